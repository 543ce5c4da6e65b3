package dev.headroom.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.sched.Scheduling;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Admission's path for a job that is claimed but cannot start: it goes back to the queue at once,
 * not counted as an attempt, with its reservation and the session held for it given back, and the
 * next admission runs it. (Before this path existed the job stayed "running" with its lease renewed
 * by every heartbeat, for ever.) A real SQLite store and a CPU device; the job's thread is what fails.
 */
class AdmissionTest {
    private static final JobStore.Owner OWNER = new JobStore.Owner("node", "run-1");

    private static Job queued(String id, long peak, long now) {
        return new Job(id, 0, JobState.queued, 0, "m", "{}", "", 64, 64, peak, 0, 64, 1, 0, null, null, false, null, 0, 0, 0, null, false, null, 0,
                now, 0, 0);
    }

    @Test
    void aClaimedJobThatCannotStartGoesBackToTheQueueAndRunsNextTime(@TempDir Path dir) {
        long now = 1_000_000;
        try (JobStore store = new SqliteJobStore(dir.resolve("headroom.db")); DeviceSlot d = DeviceSlotSessionsTest.slot(2)) {
            store.insert(queued("j", 4L << 20, now));
            // an idle session that ran the job's shape: admission sets it aside for the job
            try (SessionPool.Lease l = d.session(DeviceSlotSessionsTest.job("earlier", "m", 64, 64))) {
                l.clean();
            }
            assertEquals(1, d.idleSessions());
            Map<String, RunningJob> running = new ConcurrentHashMap<>();
            AtomicInteger starts = new AtomicInteger();
            Admission.Starter starter = r -> {
                if (starts.getAndIncrement() == 0) throw new IllegalStateException("unable to create native thread: possibly out of memory");
                return Thread.ofPlatform().start(() -> { });   // the job's work is not this test's
            };
            Leases leases = new Leases(store, OWNER, running, 30_000, 10_000, () -> now);
            Metrics metrics = new Metrics(store, List.of(d), () -> now, null);
            Admission admission = new Admission(store, OWNER, List.of(d), Scheduling.Config.DEFAULT, running, leases, 30_000, 10_000, Duration.ZERO,
                    new JobEvents(), metrics, () -> now, () -> true, Set::of, starter);

            assertFalse(admission.admitOne(d), "claimed, but its thread did not start");
            Job back = store.get("j").orElseThrow();
            assertEquals(JobState.queued, back.state(), "back in the queue");
            assertEquals(0, back.attempts(), "not counted as an attempt: the job did not fail");
            assertTrue(running.isEmpty(), "not left running");
            assertEquals(0, d.reserved(), "its reservation given back");
            assertEquals(0, d.runningCount());
            assertEquals(1, d.idleSessions(), "the session held for it is back in the pool");

            assertTrue(admission.admitOne(d), "the next admission starts it");
            assertEquals(JobState.running, store.get("j").orElseThrow().state());
            assertTrue(running.containsKey("j"));
            assertTrue(d.reserved() > 0, "reserved while it runs");
            assertEquals(0, d.idleSessions(), "the kept session is held for it");
            assertEquals(2, starts.get());
        }
    }

    @Test
    void nothingIsAdmittedWhileAdmissionIsClosedOrTheDeviceIsFull(@TempDir Path dir) {
        long now = 1_000_000;
        try (JobStore store = new SqliteJobStore(dir.resolve("headroom.db")); DeviceSlot d = DeviceSlotSessionsTest.slot(1)) {
            store.insert(queued("a", 1L << 20, now));
            store.insert(queued("b", 1L << 20, now + 1));
            Map<String, RunningJob> running = new ConcurrentHashMap<>();
            boolean[] open = {false};
            Leases leases = new Leases(store, OWNER, running, 30_000, 10_000, () -> now);
            Admission admission = new Admission(store, OWNER, List.of(d), Scheduling.Config.DEFAULT, running, leases, 30_000, 10_000, Duration.ZERO,
                    new JobEvents(), new Metrics(store, List.of(d), () -> now, null), () -> now + 2, () -> open[0], Set::of,
                    r -> Thread.ofPlatform().start(() -> { }));
            assertFalse(admission.admitOne(d), "draining: nothing admitted");
            assertEquals(JobState.queued, store.get("a").orElseThrow().state());
            open[0] = true;
            assertTrue(admission.admitOne(d));
            assertEquals(JobState.running, store.get("a").orElseThrow().state(), "the oldest first");
            assertFalse(admission.admitOne(d), "one job at a time on this device");
            assertEquals(JobState.queued, store.get("b").orElseThrow().state());
        }
    }
}
