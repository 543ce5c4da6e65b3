package dev.headroom.runtime.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.Precision;
import dev.headroom.models.Model;
import dev.headroom.models.ModelLoader;
import dev.headroom.runtime.GraphRunner;
import dev.headroom.runtime.Tensor;
import dev.headroom.testing.Golden;
import dev.headroom.testing.GpuTestBase;
import dev.headroom.testing.Randoms;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * A second process on the same device takes every convolution's strategy from the first one's
 * choices on disk instead of timing the candidates again, and runs the same plans: its output is
 * bit-identical. (Two backends opened one after the other stand in for two processes; each reads
 * the cache folder when it opens.)
 */
class GpuChoiceMemoryTest extends GpuTestBase {
    @TempDir
    Path cache;

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({"F16, rrdbnet-x4.pth", "BF16, srvgg-x4.pth", "F32, rrdbnet-x2.pth"})
    void aSecondProcessRecallsEveryChoiceAndRunsTheSamePlans(Precision precision, String file) throws Exception {
        Model m = ModelLoader.load(Golden.dir().resolve(file));
        Tensor in = Tensor.wrap(Randoms.floats(new Random(Randoms.seed()), 40 * 36 * 3, 1f), 1, 40, 36, 3);
        String before = System.getProperty("headroom.cache");
        System.setProperty("headroom.cache", cache.toString());
        try {
            Run first = run(m, precision, in), second = run(m, precision, in);
            System.out.printf("GPU %s %s: first process %.0f ms, %d shapes timed %s; second %.0f ms, %d recalled%n", precision, file,
                    first.ms, first.shapes, first.strategies, second.ms, second.recalled);
            assertEquals(0, first.recalled, "a fresh cache folder has nothing to recall");
            assertTrue(Files.list(cache.resolve("conv-choices")).findAny().isPresent(), "choices written under " + cache);
            assertEquals(first.shapes, second.recalled, "every shape recalled, none timed again");
            assertEquals(first.strategies, second.strategies);
            assertArrayEquals(first.out, second.out, "the recalled plans are the timed ones, so the output is the same bit for bit");
        } finally {
            if (before == null) System.clearProperty("headroom.cache");
            else System.setProperty("headroom.cache", before);
        }
    }

    private record Run(float[] out, double ms, int shapes, int recalled, Map<String, Integer> strategies) {}

    private static Run run(Model m, Precision precision, Tensor in) {
        long t0 = System.nanoTime();
        try (CudaOps ops = CudaOps.open(0, precision); GraphRunner runner = new GraphRunner(m.graph(), m.weights(), ops)) {
            float[] out = runner.run(in).toArray();
            double ms = (System.nanoTime() - t0) / 1e6;
            Map<String, Integer> strategies = ops.convStrategies();
            return new Run(out, ms, strategies.values().stream().mapToInt(Integer::intValue).sum(), ops.recalledChoices(), strategies);
        }
    }
}
