package dev.headroom.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.sched.Scheduling;
import dev.headroom.testing.Golden;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A job leaves its device when its last tile is done, before its file is finished: its device
 * memory is freed and its session given back by then, and the device may admit the next job while
 * the host's encoders finish this one's rows. Jobs on the device and jobs finishing on the host are
 * at most twice the device's slots.
 */
class LeavingTheDeviceTest {
    @TempDir
    Path dir;

    @Test
    void anUpscaleLeavesTheDeviceWithEverythingGivenBackBeforeItsFileIsFinished() throws Exception {
        ModelCatalog models = new ModelCatalog(Map.of("srvgg", Golden.dir().resolve("srvgg-x4.pth")), null);
        ModelCatalog.Loaded m = models.get("srvgg", 0);
        Path in = dir.resolve("in.png"), out = dir.resolve("out.png");
        Files.write(in, TestImages.noise(40, 30, 3));
        Job job = DeviceSlotSessionsTest.job("j", "srvgg", 40, 30);
        long reservation = 32L << 20;
        List<String> seen = new ArrayList<>();
        try (DeviceSlot d = DeviceSlotSessionsTest.slot(1)) {
            d.reserve(job.id(), reservation);
            assertFalse(d.hasSlot(), "one slot, taken");
            JobRunner.Control control = new JobRunner.Control() {
                public boolean stop() {
                    return false;
                }

                public void progress(int done, int total) {}

                public void phase(String name, long nanos) {
                    seen.add(name);
                }

                public void leftDevice() {
                    seen.add("left");
                    assertEquals(0L, d.usedByCategory().getOrDefault("activations", 0L), "the job's activations are freed");
                    assertEquals(1, d.idleSessions(), "its session is back for the next job");
                    assertFalse(Files.exists(out), "its file is not finished yet");
                    d.leave(job.id());
                    assertTrue(d.hasSlot(), "the device may take the next job");
                    assertEquals(0, d.reserved(), "its reservation is released");
                }
            };
            new UpscaleJobRunner().run(new JobRunner.Request(job, m, in, out, Submissions.encoding("png"), reservation, 1L << 24, Workers.OVERLAP),
                    d, control);
            assertTrue(Files.size(out) > 0, "the file is finished after");
            int left = seen.indexOf("left");
            assertTrue(left > seen.indexOf("upscale") && left < seen.indexOf("finish_file"), "left the device between its tiles and its file: " + seen);
            assertEquals(1, d.finishingCount());
            d.ended(job.id());
            assertEquals(0, d.finishingCount());
        }
    }

    @Test
    void whileAJobFinishesItsFileTheServerAdmitsTheNextOnItsDevice() throws Exception {
        long now = 1_000_000;
        JobStore.Owner owner = new JobStore.Owner("node", "run-1");
        try (JobStore store = new SqliteJobStore(dir.resolve("headroom.db")); DeviceSlot d = DeviceSlotSessionsTest.slot(1)) {
            for (String id : new String[] {"a", "b"}) {
                store.insert(new Job(id, 0, JobState.queued, 0, "srvgg", "{}", "", 40, 30, 1L << 20, 0, 64, 1, 0, null, null, false, null, 0, 0, 0,
                        null, false, null, 0, id.equals("a") ? now : now + 1, 0, 0));
            }
            ServeConfig cfg = new ServeConfig("127.0.0.1", 0, dir.resolve("data"), List.of(d), 1L << 20, 1L << 24, 0, false, Duration.ofMinutes(1),
                    Duration.ofSeconds(1), Map.of(), ServeConfig.Fleet.single("node"));
            ModelCatalog models = new ModelCatalog(Map.of("srvgg", Golden.dir().resolve("srvgg-x4.pth")), null);
            Metrics metrics = new Metrics(store, List.of(d), () -> now, models);
            Map<String, RunningJob> running = new ConcurrentHashMap<>();
            AtomicInteger pokes = new AtomicInteger();
            AtomicReference<Admission> admission = new AtomicReference<>();
            List<String> seen = new CopyOnWriteArrayList<>();
            JobRunner runner = (r, device, control) -> {
                seen.add(r.job().id() + " ran");
                if (r.job().id().equals("a")) {
                    assertFalse(d.hasSlot(), "a is on the device");
                    int before = pokes.get();
                    control.leftDevice();   // as UpscaleJobRunner says it after its last tile
                    assertTrue(pokes.get() > before, "the scheduler is told");
                    assertEquals(1, d.finishingCount(), "a finishes its file");
                    assertTrue(admission.get().admitOne(d), "and b is admitted on the device meanwhile");
                }
                Files.write(r.output(), new byte[] {1, 2, 3});
                seen.add(r.job().id() + " written");
                return new JobRunner.Outcome(Map.of(), 0);
            };
            JobThread jobs = new JobThread(cfg, new DataDir(cfg.data()), store, models, runner, new JobEvents(), metrics, () -> now, owner, running,
                    30_000, new JobThread.Host() {
                        public void storeUnreachable(RuntimeException e) {
                            throw e;
                        }

                        public void poke() {
                            pokes.incrementAndGet();
                        }

                        public boolean draining() {
                            return false;
                        }

                        public boolean stopped() {
                            return false;
                        }
                    });
            List<Thread> threads = new CopyOnWriteArrayList<>();
            admission.set(new Admission(store, owner, List.of(d), Scheduling.Config.DEFAULT, running, new Leases(store, owner, running, 30_000, 10_000,
                    () -> now), 30_000, 10_000, Duration.ZERO, new JobEvents(), metrics, () -> now, () -> true, Set::of, r -> {
                        Thread t = Thread.ofPlatform().start(() -> jobs.run(r));
                        threads.add(t);
                        return t;
                    }));
            assertTrue(admission.get().admitOne(d));
            assertFalse(admission.get().admitOne(d), "one slot: b waits while a is on the device");
            long end = System.nanoTime() + 30_000_000_000L;
            while (threads.size() < 2 && System.nanoTime() < end) Thread.sleep(5);
            for (Thread t : threads) t.join(30_000);
            assertEquals(List.of("a ran", "b ran"), seen.stream().filter(x -> x.endsWith("ran")).toList(), seen.toString());
            assertEquals(JobState.succeeded, store.get("a").orElseThrow().state());
            assertEquals(JobState.succeeded, store.get("b").orElseThrow().state());
            assertEquals(0, d.finishingCount(), "both ended: none finishing");
            assertEquals(0, d.reserved());
            assertTrue(d.hasSlot());
        }
    }

    @Test
    void freeSlotsCountWhatMayBeAdmittedNow() {
        try (DeviceSlot d = DeviceSlotSessionsTest.slot(4)) {
            assertEquals(4, d.freeSlots());
            for (String j : new String[] {"a", "b", "c", "d", "e", "f", "g"}) {
                d.reserve(j, 1 << 20);
                d.leave(j);
            }
            assertEquals(7, d.finishingCount());
            assertEquals(1, d.freeSlots(), "no job on the device, but 7 finishing of at most 8: one more");
            d.reserve("h", 1 << 20);
            assertEquals(0, d.freeSlots());
            for (String j : new String[] {"a", "b", "c", "d", "e", "f", "g", "h"}) d.ended(j);
            assertEquals(4, d.freeSlots());
        }
    }

    @Test
    void jobsOnTheDeviceAndFinishingAreAtMostTwiceItsSlots() {
        try (DeviceSlot d = DeviceSlotSessionsTest.slot(1)) {
            d.reserve("a", 1 << 20);
            assertFalse(d.hasSlot());
            d.leave("a");
            assertTrue(d.hasSlot(), "a finishes on the host: b may run");
            assertEquals(1, d.finishingCount());
            d.reserve("b", 1 << 20);
            d.leave("b");
            assertEquals(2, d.finishingCount());
            assertFalse(d.hasSlot(), "two finishing with one slot: no third until one ends");
            assertEquals(0, d.freeSlots());
            assertTrue(d.snapshot().get("finishing_jobs").toString().contains("b"), d.snapshot().toString());
            d.ended("a");
            assertTrue(d.hasSlot());
            d.leave("x");
            assertEquals(1, d.finishingCount(), "a job not on the device does not count as finishing");
            d.ended("b");
            assertEquals(0, d.finishingCount());
            assertEquals(0, d.reserved());
        }
    }

    @Test
    void theFinishingFactorIsAWholeNumberFromOneToSixteen() {
        assertEquals(2, DeviceSlot.finishingFactor(null), "the default");
        assertEquals(2, DeviceSlot.finishingFactor(" "));
        assertEquals(1, DeviceSlot.finishingFactor("1"));
        assertEquals(16, DeviceSlot.finishingFactor(" 16 "));
        for (String bad : new String[] {"0", "17", "-1", "two", "1.5"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> DeviceSlot.finishingFactor(bad));
            assertTrue(e.getMessage().contains("finishing-factor=" + bad) && e.getMessage().contains("1 to 16"), e.getMessage());
        }
    }
}
