package dev.headroom.runtime.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.Precision;
import dev.headroom.models.Model;
import dev.headroom.models.SyntheticModels;
import dev.headroom.runtime.GraphRunner;
import dev.headroom.runtime.Tensor;
import dev.headroom.testing.GpuTestBase;
import dev.headroom.testing.Randoms;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * On an empty choice cache, the {@code first} start runs every convolution shape on cuDNN's heuristic
 * choice without timing anything, gives what the timed choices give (within fp16 rounding), and
 * writes its untimed choices to disk only as untimed (micros NaN). Both first passes' times are
 * printed (timing every shape first, `full`, is what the heuristic start saves).
 */
class GpuQuickStartTest extends GpuTestBase {
    @TempDir
    Path cache;

    private record Run(float[] out, double firstMs, Map<String, Integer> strategies, int recalled) {}

    private Run run(Model m, String timing, Tensor in) {
        String before = System.getProperty("headroom.conv-timing"), cacheBefore = System.getProperty("headroom.cache");
        String startBefore = System.getProperty("headroom.conv-start");
        System.setProperty("headroom.conv-start", "first");   // cuDNN's first choice on this thread, not the background start
        System.setProperty("headroom.conv-timing", timing);
        System.setProperty("headroom.cache", cache.resolve(timing).toString());
        try (CudaOps ops = CudaOps.open(0, Precision.F16); GraphRunner runner = new GraphRunner(m.graph(), m.weights(), ops)) {
            long t0 = System.nanoTime();
            float[] out = runner.run(in).toArray();
            double ms = (System.nanoTime() - t0) / 1e6;
            return new Run(out, ms, ops.convStrategies(), ops.recalledChoices());
        } finally {
            restore("headroom.conv-timing", before);
            restore("headroom.cache", cacheBefore);
            restore("headroom.conv-start", startBefore);
        }
    }

    private static void restore(String key, String value) {
        if (value == null) System.clearProperty(key);
        else System.setProperty(key, value);
    }

    @Test
    void heuristicStartTimesNothingAndAgreesWithTheTimedChoices() throws Exception {
        Model m = SyntheticModels.build("rrdbnet-x4-6b", 2026);   // the real architecture's shapes, no file to carry
        Tensor in = Tensor.wrap(Randoms.floats(new Random(Randoms.seed()), 64 * 64 * 3, 1f), 1, 64, 64, 3);
        Run quick = run(m, "budget", in), full = run(m, "full", in);
        System.out.printf("GPU quick start: first pass %.0f ms on cuDNN's heuristic choices %s; timing every shape first %.0f ms %s%n",
                quick.firstMs, quick.strategies, full.firstMs, full.strategies);
        // shapes that no cuDNN graph takes are timed as before; the rest start on the heuristic's choice
        assertTrue(quick.strategies.keySet().stream().anyMatch(k -> k.endsWith("(heuristic)")), "shapes on the heuristic choice: " + quick.strategies);
        int untimed = quick.strategies.entrySet().stream().filter(e -> e.getKey().endsWith("(heuristic)")).mapToInt(Map.Entry::getValue).sum();
        int shapes = quick.strategies.values().stream().mapToInt(Integer::intValue).sum();
        assertTrue(untimed >= shapes - 2, untimed + " of " + shapes + " shapes untimed: " + quick.strategies);
        assertTrue(full.strategies.keySet().stream().noneMatch(k -> k.endsWith("(heuristic)")), "all timed: " + full.strategies);
        assertEquals(0, quick.recalled);
        Path store = cache.resolve("budget").resolve("conv-choices");
        if (java.nio.file.Files.isDirectory(store)) {
            try (var files = java.nio.file.Files.list(store)) {
                for (Path f : files.toList()) {
                    for (String line : java.nio.file.Files.readAllLines(f)) {
                        // cuDNN's first choices are remembered untimed (micros NaN), so a later process starts on them at once and still times them
                        if (line.contains("\tFUSED\t") || line.contains("\tGRAPH\t") || line.contains("\tGEMM\t")) {
                            assertTrue(line.endsWith("\tNaN"), "untimed choice remembered as timed: " + line);
                        }
                    }
                }
            }
        }
        double worst = 0;
        for (int i = 0; i < quick.out.length; i++) worst = Math.max(worst, Math.abs(quick.out[i] - full.out[i]));
        assertTrue(worst < 0.02, "heuristic and timed plans agree within fp16 rounding: max difference " + worst);
    }

    @Test
    void backgroundStartRunsPrecompiledFirstAndRecordsCuDnnsFirstChoices() throws Exception {
        // HEADROOM_CONV_START=background: the first pass on precompiled engines while the first choices build on workers;
        // the second pass is recorded, so every shape must have taken its background build up by then
        Model m = SyntheticModels.build("rrdbnet-x4-6b", 2026);
        Tensor in = Tensor.wrap(Randoms.floats(new Random(Randoms.seed()), 64 * 64 * 3, 1f), 1, 64, 64, 3);
        Run budget = run(m, "budget", in);
        String before = System.getProperty("headroom.conv-start"), cacheBefore = System.getProperty("headroom.cache");
        String timingBefore = System.getProperty("headroom.conv-timing");
        System.setProperty("headroom.conv-timing", "budget");   // scripts/device-test times every shape (full): nothing would start untimed
        System.setProperty("headroom.conv-start", "background");
        System.setProperty("headroom.cache", cache.resolve("background").toString());
        try (CudaOps ops = CudaOps.open(0, Precision.F16); GraphRunner runner = new GraphRunner(m.graph(), m.weights(), ops)) {
            long t0 = System.nanoTime();
            float[] first = runner.run(in).toArray();
            double firstMs = (System.nanoTime() - t0) / 1e6;
            Map<String, Integer> starts = ops.convStrategies();
            t0 = System.nanoTime();
            // recording a pass first waits for the builds still running and takes them up (an empty recording here)
            dev.headroom.runtime.Ops.Recording r = ops.record(() -> { });
            if (r != null) r.close();
            double settleMs = (System.nanoTime() - t0) / 1e6;
            float[] second = runner.run(in).toArray();
            double secondMs = (System.nanoTime() - t0) / 1e6 - settleMs;
            Map<String, Object> d = ops.diagnostics();
            System.out.printf("GPU background start: first pass %.0f ms %s, waiting for the builds %.0f ms, second pass %.0f ms %s, %s shapes taken up, failures %s; %s%n",
                    firstMs, starts, settleMs, secondMs, ops.convStrategies(), d.get("conv_background_adopted"), d.get("graph_failures"), d);
            long graceHits = ((Number) d.get("conv_grace_hits")).longValue();
            assertTrue(d.containsKey("conv_background_adopted") || graceHits > 0, "shapes taken up from the background: " + d);
            assertEquals(budget.strategies, ops.convStrategies(), "the recorded pass runs cuDNN's first choices, as the default start does");
            for (float[] out : new float[][] {first, second}) {
                double worst = 0;
                for (int i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs(out[i] - budget.out[i]));
                assertTrue(worst < 0.02, "precompiled and first-choice engines agree within fp16 rounding: max difference " + worst);
            }
        } finally {
            restore("headroom.conv-start", before);
            restore("headroom.conv-timing", timingBefore);
            restore("headroom.cache", cacheBefore);
        }
    }
}
