package dev.headroom.server;

import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * Renews the leases of this server's running jobs, once per heartbeat. A job the store no longer
 * names as ours was taken from us (its lease ran out while the store was unreachable): it is marked
 * lost and stops at its next tile without writing anything. A cancel made through another server of
 * a fleet reaches the job here. A renewed job's own lease deadline moves on, measured from before
 * the renewal was asked, less half a heartbeat, so this server's clock always gives up first.
 *
 * <p>Only the jobs a renewal named can be judged by its answer: a job claimed while the renewal was
 * in flight is in the running map but not in the answer, and is not lost. (Judging every running
 * job whose claim began before the renewal marked lost one whose claim began before it and entered
 * the running map after its list was taken; {@code LeasesTest} holds this.)
 */
final class Leases {
    private final JobStore store;
    private final JobStore.Owner owner;
    private final Map<String, RunningJob> running;
    private final long leaseMillis, heartbeatMillis;
    private final LongSupplier clock;

    Leases(JobStore store, JobStore.Owner owner, Map<String, RunningJob> running, long leaseMillis, long heartbeatMillis, LongSupplier clock) {
        this.store = store;
        this.owner = owner;
        this.running = running;
        this.leaseMillis = leaseMillis;
        this.heartbeatMillis = heartbeatMillis;
        this.clock = clock;
    }

    /** How long a new or renewed lease lasts by this server's clock: the store's, less half a heartbeat. */
    long localLeaseNanos() {
        return TimeUnit.MILLISECONDS.toNanos(leaseMillis - heartbeatMillis / 2);
    }

    /** One renewal of every running job's lease (throws {@link JobStore.Unavailable} when the store is away: nothing changes then). */
    void renew() {
        long t0 = System.nanoTime();
        List<String> ids = List.copyOf(running.keySet());
        Map<String, Boolean> held = store.renew(owner, ids, leaseMillis, clock.getAsLong());
        for (String id : ids) {
            RunningJob r = running.get(id);
            if (r == null) continue;   // ended meanwhile
            Boolean cancel = held.get(id);
            if (cancel == null) {
                r.lost = true;   // taken from us
            } else {
                r.leaseDeadline = t0 + localLeaseNanos();
                if (cancel) r.cancelled = true;
            }
        }
    }
}
