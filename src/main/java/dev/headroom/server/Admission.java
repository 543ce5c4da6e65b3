package dev.headroom.server;

import dev.headroom.core.sched.Placement;
import dev.headroom.core.sched.Scheduling;
import dev.headroom.core.sched.Waiting;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.LongSupplier;
import java.util.function.Supplier;

/**
 * Admits queued jobs onto a device, one at a time: the store offers candidates in priority-with-
 * aging order, {@link Placement} leaves some to other servers or devices, {@link Scheduling} picks
 * among the rest against this device's ledger, idle models are evicted if the pick needs their room,
 * and the pick is claimed in the store, reserved on the device, given a kept session and started.
 *
 * <p>Admission and cancellation take one lock ({@link #lock}), so a cancel either finds the job
 * queued and cancels it in the store, or finds it running and flags it: no cancel is lost between
 * the two. A job claimed but not started (its thread could not start, a reservation failed) goes
 * back to the queue at once, with its reservation and held session released: otherwise it stayed
 * "running" with its lease renewed by every heartbeat, for ever.
 */
final class Admission {
    /** Starts a claimed job's thread (a platform thread: see {@link Workers}); may throw, and the job then goes back to the queue. */
    interface Starter {
        Thread start(RunningJob r);
    }

    /**
     * How long a job whose model is resident on another device of this server, and not on this
     * one where loading it would evict another model, is left for that device while it has a free
     * slot (it runs there without loading the weights); past it, any device that can admit it takes it.
     */
    static final long RESIDENT_ELSEWHERE_MILLIS = 2_000;

    final Object lock = new Object();
    private final JobStore store;
    private final JobStore.Owner owner;
    private final List<DeviceSlot> devices;
    private final Scheduling.Config policy;
    private final Map<String, RunningJob> running;
    private final Leases leases;
    private final long leaseMillis, heartbeatMillis;
    private final Duration jobTimeout;
    private final JobEvents events;
    private final Metrics metrics;
    private final LongSupplier clock;
    /** Whether admitting is allowed (not draining, not stopped). */
    private final BooleanSupplier open;
    /** Models resident on other live servers of a fleet that have a free slot, from the last heartbeat. */
    private final Supplier<Set<String>> residentOnIdleOthers;
    private final Starter starter;

    Admission(JobStore store, JobStore.Owner owner, List<DeviceSlot> devices, Scheduling.Config policy, Map<String, RunningJob> running,
              Leases leases, long leaseMillis, long heartbeatMillis, Duration jobTimeout, JobEvents events, Metrics metrics, LongSupplier clock,
              BooleanSupplier open, Supplier<Set<String>> residentOnIdleOthers, Starter starter) {
        this.store = store;
        this.owner = owner;
        this.devices = devices;
        this.policy = policy;
        this.running = running;
        this.leases = leases;
        this.leaseMillis = leaseMillis;
        this.heartbeatMillis = heartbeatMillis;
        this.jobTimeout = jobTimeout;
        this.events = events;
        this.metrics = metrics;
        this.clock = clock;
        this.open = open;
        this.residentOnIdleOthers = residentOnIdleOthers;
        this.starter = starter;
    }

    /** Admits the policy's choice on device d if it fits now; false when nothing was admitted. */
    boolean admitOne(DeviceSlot d) {
        long t0 = System.nanoTime();
        synchronized (lock) {
            if (!open.getAsBoolean()) return false;
            if (!d.hasSlot()) return false;
            long now = clock.getAsLong(), claimedNanos = System.nanoTime();
            Optional<Job> claimed = claim(d, now);
            if (claimed.isEmpty()) return false;
            return start(d, claimed.get(), now, t0, claimedNanos);
        }
    }

    /** Claims the job this device should run next, if any fits now. */
    private Optional<Job> claim(DeviceSlot d, long now) {
        Set<String> resident = d.residentModels();
        Set<String> elsewhere = residentOnIdleOthers.get();
        // shapes whose plans a kept session has (only if one is idle now: else the job opens a new session)
        Set<String> warm = d.hasIdleSession() ? d.warmShapes() : Set.of();
        // models resident on this server's other devices that have a free slot: such a device takes the job without loading
        Set<String> residentOnFreeDevices = new HashSet<>();
        for (DeviceSlot o : devices) {
            if (o != d && o.hasSlot()) residentOnFreeDevices.addAll(o.residentModels());
        }
        long room = d.roomWithoutEviction();
        var state = new Scheduling.DeviceState(d.headroom(), d.runningCount(), resident, warm, room);
        // the store offers candidates in priority-with-aging order; this device's ledger decides which it can admit
        return store.claimNext(owner, leaseMillis, now, queued -> {
            List<Waiting> waiting = new ArrayList<>();
            for (Job j : queued) {
                long waited = now - j.created();
                if (Placement.leaveToOthers(j.model(), waited, resident, elsewhere, 2 * heartbeatMillis)) continue;
                long need = d.need(j, resident);
                if (Placement.leaveToOtherDevice(j.model(), waited, need, room, resident, residentOnFreeDevices, RESIDENT_ELSEWHERE_MILLIS)) continue;
                waiting.add(new Waiting(j.id(), j.priority(), j.created(), j.seq(), j.model(), need, DeviceSlot.shape(j)));
            }
            Optional<Waiting> next = Scheduling.next(waiting, now, state, policy.withMaxRunning(d.maxRunning()));
            // idle models' weights count as room: evict them now if this job needs it
            if (next.isEmpty() || !d.makeRoom(next.get().peakBytes())) return Optional.empty();
            return next.map(Waiting::id);
        });
    }

    /** Reserves, holds a session for and starts a claimed job; a job that cannot start goes back to the queue (false). */
    private boolean start(DeviceSlot d, Job job, long now, long t0, long claimedNanos) {
        long reserved = d.reservation(job.peakBytes(), job.weightBytes());
        long deadline = jobTimeout.isZero() ? Long.MAX_VALUE : now + jobTimeout.toMillis();
        RunningJob r = new RunningJob(job, d, deadline, claimedNanos, leases.localLeaseNanos());
        try {
            d.reserve(job.id(), reserved);
            d.holdSession(job);
            running.put(job.id(), r);
            r.phase("queue", TimeUnit.MILLISECONDS.toNanos(Math.max(0, now - job.created())));
            r.phase("admit", System.nanoTime() - t0);
            metrics.admissionWaitSeconds.observe(Math.max(0, now - job.created()) / 1000.0);
            events.emit(job.id(), "admitted", Map.of("device", d.name(), "node", owner.node(), "reserved_bytes", reserved, "tile", job.tile(),
                    "attempts", job.attempts()));
            r.thread = starter.start(r);
            return true;
        } catch (RuntimeException | Error e) {
            running.remove(job.id());
            d.release(job.id());
            d.unhold(job.id());
            store.requeue(job.id(), owner);
            System.err.println("headroom serve: job " + job.id() + " went back to the queue: it could not be started (" + e + ")");
            return false;
        }
    }
}
