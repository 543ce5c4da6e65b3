package dev.headroom.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.runtime.Residency;
import dev.headroom.runtime.cpu.CpuDevice;
import dev.headroom.runtime.memory.MemoryOptions;
import dev.headroom.runtime.memory.MemoryReport;
import dev.headroom.runtime.memory.Pressure;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The dashboard's memory timeline on a real CPU device's shared memory: a running job's bytes by
 * band, markers for admission, rungs and out of memory, and the job's own trace kept for its report.
 */
class MemoryTimelineTest {
    static final long MiB = 1 << 20;

    @TempDir
    Path dir;

    @Test
    void samplesARunningJobsMemoryAndMarksWhatHappened() throws Exception {
        CpuDevice cpu = new CpuDevice(new MemoryOptions(256 * MiB, false, 10_000, Pressure.Thresholds.DEFAULT));
        try (DeviceSlot d = new DeviceSlot(cpu, new Residency(cpu, 0), 2)) {
            MemoryTimeline t = new MemoryTimeline(List.of(d), new ModelCatalog(Map.of(), null), dir.resolve("reports"));
            var memory = cpu.memory();
            d.reserve("job1", 64 * MiB);
            t.emitted("job1", new JobEvents.Event(2, "admitted", Map.of("device", "cpu", "reserved_bytes", 64 * MiB)), 1_000);
            try (var job = memory.job("job job1", 64 * MiB)) {
                var buf = memory.allocate(5 * MiB);
                t.sample(2_000);
                Map<String, Long> s = t.samplesAfter(0).getLast().bytes();
                assertEquals(5 * MiB, s.get("activations/job1"), s.toString());
                assertEquals(59 * MiB, s.get("reserved"), "reserved but not yet allocated: " + s);
                memory.rung("shrink-tile", "512 -> 256");
                t.sample(3_000);
                memory.free(buf);
            }
            t.emitted("job1", new JobEvents.Event(9, "failed", Map.of("error", "out of memory on cpu: requested 1 GiB")), 4_000);
            d.release("job1");
            t.sample(5_000);
            List<String> kinds = t.markersAfter(0).stream().map(MemoryTimeline.Marker::kind).toList();
            assertEquals(List.of("admitted", "rung", "oom"), kinds);
            assertTrue(t.markersAfter(0).get(1).label().contains("shrink-tile"), t.markersAfter(0).toString());
            Map<String, Long> after = t.samplesAfter(0).getLast().bytes();
            assertFalse(after.containsKey("activations/job1") || after.containsKey("reserved"), "nothing held for the job after it let go: " + after);
            // the job's own events are written off the caller's thread, a moment after its end
            Path trace = t.trace("job1");
            for (int i = 0; i < 200 && !Files.exists(trace); i++) Thread.sleep(20);
            MemoryReport.Timeline report = MemoryReport.read(trace);
            assertTrue(report.events() >= 2, report.toString());
            long seq = t.samplesAfter(0).getLast().seq();
            assertEquals(List.of(), t.samplesAfter(seq));
        }
    }

    /**
     * Sampling walks the device ledger's tree while job threads add and close their nodes: walked
     * unguarded it threw ConcurrentModificationException out of the "admitted" event, between a
     * job's claim and the start of its thread, and the job stayed "running" for ever (ServeLoadTest's
     * one "job never finished" in CI, load average 16).
     */
    @Test
    void theTimelineSamplesWhileJobsOpenAndCloseTheirLedgerNodes() throws Exception {
        CpuDevice cpu = new CpuDevice(new MemoryOptions(256 * MiB, false, 10_000, Pressure.Thresholds.DEFAULT));
        try (DeviceSlot d = new DeviceSlot(cpu, new Residency(cpu, 0), 4)) {
            MemoryTimeline t = new MemoryTimeline(List.of(d), new ModelCatalog(Map.of(), null), null);
            var memory = cpu.memory();
            AtomicBoolean stop = new AtomicBoolean();
            List<Throwable> failures = new CopyOnWriteArrayList<>();
            List<Thread> jobs = new java.util.ArrayList<>();
            for (int k = 0; k < 3; k++) {
                int id = k;
                jobs.add(Thread.ofPlatform().start(() -> {
                    try {
                        for (int n = 0; !stop.get(); n++) {
                            try (var job = memory.job("job " + id + "-" + n, 8 * MiB)) {
                                memory.free(memory.allocate(MiB));
                            }
                        }
                    } catch (Throwable e) {
                        failures.add(e);
                    }
                }));
            }
            long samples = 0, until = System.nanoTime() + 400_000_000L;
            try {
                while (System.nanoTime() < until) {
                    t.sample(samples++);
                }
            } catch (RuntimeException e) {
                failures.add(e);
            } finally {
                stop.set(true);
                for (Thread j : jobs) j.join();
            }
            assertEquals(List.of(), failures, "after " + samples + " samples");
            assertTrue(samples > 100, "sampled only " + samples + " times");
        }
    }
}
