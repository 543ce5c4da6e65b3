package dev.headroom.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

/**
 * The heartbeat's lease renewal judges only the jobs it named. The race it must survive: a job's
 * claim begins before a renewal, and the job enters the running map after the renewal took its
 * list of ids. The store's answer cannot name that job, and it must not be taken for lost (it was
 * then abandoned at its next tile: a lease of delay, and a step towards the poison rule). Here the
 * store's renew puts the job into the running map while it answers, which is that interleaving,
 * made certain instead of left to timing.
 */
class LeasesTest {
    private static final JobStore.Owner OWNER = new JobStore.Owner("node", "run-1");
    private static final long LEASE_MILLIS = 30_000, HEARTBEAT_MILLIS = 10_000;

    /** A store whose only working call is renew, answered by {@code answer}; every other call fails the test. */
    private static JobStore renewing(Function<Collection<String>, Map<String, Boolean>> answer, List<Collection<String>> asked) {
        return (JobStore) Proxy.newProxyInstance(JobStore.class.getClassLoader(), new Class<?>[] {JobStore.class}, (proxy, m, args) -> {
            if (m.getName().equals("renew")) {
                @SuppressWarnings("unchecked") Collection<String> ids = (Collection<String>) args[1];
                asked.add(List.copyOf(ids));
                return answer.apply(ids);
            }
            throw new AssertionError("the lease renewal called " + m.getName());
        });
    }

    private static RunningJob running(String id, long claimedNanos) {
        return new RunningJob(DeviceSlotSessionsTest.job(id, "m", 64, 64), null, Long.MAX_VALUE, claimedNanos, java.util.concurrent.TimeUnit.SECONDS.toNanos(25));
    }

    @Test
    void aJobClaimedWhileTheRenewalIsInFlightIsNotLost() {
        Map<String, RunningJob> jobs = new ConcurrentHashMap<>();
        RunningJob a = running("a", System.nanoTime());
        jobs.put("a", a);
        // b's claim began before the renewal; it enters the running map while the store is answering
        RunningJob b = running("b", System.nanoTime());
        List<Collection<String>> asked = new ArrayList<>();
        JobStore store = renewing(ids -> {
            jobs.put("b", b);
            Map<String, Boolean> held = new java.util.HashMap<>();
            for (String id : ids) held.put(id, false);
            return held;
        }, asked);
        long before = System.nanoTime();
        new Leases(store, OWNER, jobs, LEASE_MILLIS, HEARTBEAT_MILLIS, () -> 0).renew();
        assertEquals(List.of(List.of("a")), asked, "the renewal named the jobs running when it began");
        assertFalse(b.lost, "a job claimed while the renewal was in flight is not judged by its answer");
        assertFalse(b.leaseRanOut(), "and keeps the lease its claim gave it");
        assertFalse(a.lost);
        assertTrue(a.leaseDeadline >= before + java.util.concurrent.TimeUnit.MILLISECONDS.toNanos(LEASE_MILLIS - HEARTBEAT_MILLIS / 2),
                "a renewed job's lease runs a lease (less half a heartbeat) from the renewal");
    }

    @Test
    void aJobTheStoreNoLongerNamesIsLostAndACancelReachesItsJob() {
        Map<String, RunningJob> jobs = new ConcurrentHashMap<>();
        RunningJob taken = running("taken", System.nanoTime()), kept = running("kept", System.nanoTime()), stop = running("stop", System.nanoTime());
        jobs.put("taken", taken);
        jobs.put("kept", kept);
        jobs.put("stop", stop);
        List<Collection<String>> asked = new ArrayList<>();
        JobStore store = renewing(ids -> Map.of("kept", false, "stop", true), asked);
        new Leases(store, OWNER, jobs, LEASE_MILLIS, HEARTBEAT_MILLIS, () -> 0).renew();
        assertTrue(taken.lost, "named, and missing from the answer: another server has it");
        assertFalse(kept.lost);
        assertFalse(kept.cancelled);
        assertTrue(stop.cancelled, "a cancel made through another server");
        assertFalse(stop.lost);
    }

    @Test
    void anUnreachableStoreChangesNothing() {
        Map<String, RunningJob> jobs = new ConcurrentHashMap<>();
        RunningJob a = running("a", System.nanoTime());
        long deadline = a.leaseDeadline;
        jobs.put("a", a);
        JobStore store = renewing(ids -> {
            throw new JobStore.Unavailable("database away", null);
        }, new ArrayList<>());
        assertThrows(JobStore.Unavailable.class, () -> new Leases(store, OWNER, jobs, LEASE_MILLIS, HEARTBEAT_MILLIS, () -> 0).renew());
        assertFalse(a.lost, "not lost until its own lease deadline passes");
        assertEquals(deadline, a.leaseDeadline, "and not renewed either");
    }
}
