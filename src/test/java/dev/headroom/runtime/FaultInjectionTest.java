package dev.headroom.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.Weights;
import dev.headroom.core.graph.Graph;
import dev.headroom.core.image.FloatImage;
import dev.headroom.runtime.cpu.CpuOps;
import dev.headroom.runtime.memory.DeviceMemory;
import dev.headroom.runtime.memory.DeviceOutOfMemory;
import dev.headroom.runtime.memory.MemoryOptions;
import dev.headroom.runtime.memory.MemoryTrace;
import dev.headroom.runtime.memory.Pressure;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The degrade ladder over a whole tiled upscale on the CPU backend (a small seeded dense-block
 * model keeps it fast): every allocation of the job is failed in turn, once and for good; every run
 * ends with the unfailed output or a typed error, and with the ledger back at its baseline.
 */
class FaultInjectionTest {
    private final Graph graph = GraphRunnerTest.denseGraph();
    private final Weights weights = GraphRunnerTest.randomWeights(graph, new Random(7));
    private final FloatImage image = image(70, 52);

    private static FloatImage image(int w, int h) {
        Random r = new Random(11);
        float[] d = new float[w * h * 3];
        for (int i = 0; i < d.length; i++) d[i] = r.nextFloat();
        return new FloatImage(w, h, 3, d, 8);
    }

    private static void assertBaseline(DeviceMemory m) {
        Map<String, Long> used = m.usedByCategory();
        assertEquals(0L, used.get("activations"), "activations back to zero");
        assertEquals(0L, used.get("workspace"), "workspace back to zero");
        assertEquals(0L, m.stats().allocated());
    }

    /** The unfailed output, and how many allocations the job makes. */
    private record Unfailed(float[] output, long requests) {}

    private Unfailed unfailed() {
        try (CpuOps ops = new CpuOps(); GraphRunner runner = new GraphRunner(graph, weights, ops)) {
            long[] count = {0};
            ops.memory().injectFaults((request, attempt) -> {
                count[0] = request;
                return false;
            });
            float[] out = new TiledUpscaler(runner, 1f).upscale(image, 40, 8, null).data();
            assertTrue(count[0] > 20, "the job makes " + count[0] + " requests");
            return new Unfailed(out, count[0]);
        }
    }

    @Test
    void failingEachAllocationOnceStillGivesTheSameImage() {
        Unfailed u = unfailed();
        long requests = u.requests();
        float[] expected = u.output();
        for (long n = 1; n <= requests; n++) {
            final long fail = n;
            try (CpuOps ops = new CpuOps(); GraphRunner runner = new GraphRunner(graph, weights, ops)) {
                ops.memory().injectFaults((request, attempt) -> request == fail && attempt == 0);
                float[] got = new TiledUpscaler(runner, 1f).upscale(image, 40, 8, null).data();
                assertArrayEquals(expected, got, "request " + n + " failed once");
                assertEquals(1L, ops.memory().rungs().get("flush-cache"), "the retry after flushing the cache succeeded");
                assertBaseline(ops.memory());
            }
        }
    }

    @Test
    void failingEveryAllocationFromOneOnEndsInATypedErrorAndNoLeak() {
        long requests = unfailed().requests();
        for (long n = 1; n <= requests; n++) {
            final long from = n;
            try (CpuOps ops = new CpuOps(); GraphRunner runner = new GraphRunner(graph, weights, ops)) {
                ops.memory().injectFaults((request, attempt) -> request >= from);
                TiledUpscaler up = new TiledUpscaler(runner, 1f);
                var e = assertThrows(DeviceOutOfMemory.class, () -> up.upscale(image, 40, 8, null), "failing from request " + n);
                assertTrue(e.getMessage().startsWith("out of memory on cpu: requested "), e.getMessage());
                assertEquals(java.util.List.of("flush-cache"), e.rungs);
                assertBaseline(ops.memory());
            }
        }
    }

    @Test
    void twoHundredJobsEndAtTheBaselineWithNoDriverCallAfterTheFirst() {
        FloatImage small = image(30, 30);
        try (CpuOps ops = new CpuOps(); GraphRunner runner = new GraphRunner(graph, weights, ops)) {
            DeviceMemory m = ops.memory();
            TiledUpscaler up = new TiledUpscaler(runner, 1f);
            long driverAfterFirst = -1;
            for (int job = 0; job < 200; job++) {
                try (var scope = m.job("job-" + job, Long.MAX_VALUE)) {
                    up.upscale(small, 16, 4, null);
                }
                assertBaseline(m);
                if (job == 0) driverAfterFirst = m.stats().driverAllocations();
            }
            assertEquals(driverAfterFirst, m.stats().driverAllocations(), "jobs 2..200 were served from the cache");
        }
    }

    /**
     * Under a budget that a 384-pixel tile does not fit, the upscale completes by halving the tile
     * once, keeps the tiles it had, and the trace shows the rung.
     */
    @Test
    void underABudgetTheTileShrinksInsteadOfFailing() {
        FloatImage img = image(384, 384);
        long allocatedFull, reservedHalf;
        float[] reference;
        try (CpuOps ops = new CpuOps(); GraphRunner runner = new GraphRunner(graph, weights, ops)) {
            new TiledUpscaler(runner, 1f).upscale(img, 384, 8, null);
            allocatedFull = ops.memory().stats().allocatedPeak();
        }
        try (CpuOps ops = new CpuOps(); GraphRunner runner = new GraphRunner(graph, weights, ops)) {
            reference = new TiledUpscaler(runner, 1f).upscale(img, 192, 8, null).data();
            reservedHalf = ops.memory().stats().reservedPeak();
        }
        long budget = Math.max(reservedHalf, allocatedFull * 3 / 4);
        assertTrue(budget < allocatedFull, "a budget between the two: half-size tiles need " + reservedHalf + ", whole " + allocatedFull);
        MemoryOptions options = new MemoryOptions(budget, false, 100_000, Pressure.Thresholds.DEFAULT);
        try (CpuOps ops = new CpuOps(options); GraphRunner runner = new GraphRunner(graph, weights, ops)) {
            TiledUpscaler up = new TiledUpscaler(runner, 1f);
            float[] got = up.upscale(img, 384, 8, null).data();
            assertEquals(192, up.tile());
            assertEquals(1, up.shrinks());
            assertEquals(1L, ops.memory().rungs().get("shrink-tile"));
            assertTrue(ops.memory().stats().reservedPeak() <= budget, "never beyond the budget");
            assertTrue(ops.memory().trace().events().stream()
                    .anyMatch(e -> e.kind() == MemoryTrace.Kind.RUNG && "shrink-tile".equals(e.category()) && "384 -> 192 px".equals(e.detail())));
            double max = 0;
            for (int i = 0; i < got.length; i++) max = Math.max(max, Math.abs(got[i] - reference[i]));
            System.out.printf("384 px tile under a %.1f MiB budget (it needs %.1f MiB): shrank to 192, max difference from 192 px tiles %.2g%n",
                    budget / 1048576.0, allocatedFull / 1048576.0, max);
            assertTrue(max < 1e-5, "the shrunk region is the same grid as asking for 192 px tiles: " + max);
            assertBaseline(ops.memory());
        }
    }

    /**
     * Under a budget that a batch of four tiles does not fit but one tile does, the batch is halved
     * until it fits, the result is the tile-by-tile one, and the trace shows each halving.
     */
    @Test
    void underABudgetTheBatchHalvesInsteadOfFailing() {
        FloatImage img = image(420, 420);
        long allocatedBatch, reservedOne;
        float[] reference;
        try (CpuOps ops = new CpuOps(); GraphRunner runner = new GraphRunner(graph, weights, ops)) {
            TiledUpscaler up = new TiledUpscaler(runner, 1f);
            up.batch(4);
            up.upscale(img, 216, 8, null);
            allocatedBatch = ops.memory().stats().allocatedPeak();
        }
        try (CpuOps ops = new CpuOps(); GraphRunner runner = new GraphRunner(graph, weights, ops)) {
            reference = new TiledUpscaler(runner, 1f).upscale(img, 216, 8, null).data();
            reservedOne = ops.memory().stats().reservedPeak();
        }
        long budget = Math.max(reservedOne, allocatedBatch / 2);
        assertTrue(budget < allocatedBatch, "a budget between the two: one tile needs " + reservedOne + ", four " + allocatedBatch);
        MemoryOptions options = new MemoryOptions(budget, false, 100_000, Pressure.Thresholds.DEFAULT);
        try (CpuOps ops = new CpuOps(options); GraphRunner runner = new GraphRunner(graph, weights, ops)) {
            TiledUpscaler up = new TiledUpscaler(runner, 1f);
            up.batch(4);
            float[] got = up.upscale(img, 216, 8, null).data();
            assertTrue(up.batch() < 4, "halved to " + up.batch());
            assertEquals(0, up.shrinks(), "the tile edge was kept");
            assertTrue(up.batchHalvings() >= 1);
            assertEquals((long) up.batchHalvings(), ops.memory().rungs().get("halve-batch"));
            assertTrue(ops.memory().trace().events().stream()
                    .anyMatch(e -> e.kind() == MemoryTrace.Kind.RUNG && "halve-batch".equals(e.category()) && "4 -> 2 tiles".equals(e.detail())));
            assertTrue(ops.memory().stats().reservedPeak() <= budget, "never beyond the budget");
            assertArrayEquals(reference, got, "halved batches compute every tile as before");
            System.out.printf("batch of 4 tiles under a %.1f MiB budget (it needs %.1f MiB): halved %d time(s) to %d%n", budget / 1048576.0,
                    allocatedBatch / 1048576.0, up.batchHalvings(), up.batch());
            assertBaseline(ops.memory());
        }
    }
}
