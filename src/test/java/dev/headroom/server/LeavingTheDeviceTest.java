package dev.headroom.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.testing.Golden;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
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
}
