package dev.headroom.runtime.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.Precision;
import dev.headroom.models.Model;
import dev.headroom.models.SyntheticModels;
import dev.headroom.runtime.GraphRunner;
import dev.headroom.runtime.Session;
import dev.headroom.runtime.Tensor;
import dev.headroom.testing.Randoms;
import dev.headroom.testing.SystemProperties;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A plan finalised once is serialised ({@link SerializedPlans}) and the next session that needs its
 * own copy deserialises it instead of compiling it again, with the same output bit for bit. The
 * first session keeps its graphs lent while the second runs, so the second cannot borrow them from
 * the plan service: the first builds and stores, the second reads.
 */
class GpuSerializedPlansTest extends GpuDeviceTestBase {
    @TempDir
    Path cache;

    private static long count(Map<?, ?> stats, String key) {
        return ((Number) stats.get(key)).longValue();
    }

    @Test
    void aSecondSessionDeserialisesTheFirstOnesPlansAndGetsTheSameBits() throws Exception {
        // untimed first choices (runtime-compiled fused engines on the H200): scripts/device-test times every shape
        try (var props = SystemProperties.set("headroom.conv-timing", "budget", "headroom.conv-start", "first", "headroom.cache", cache.toString())) {
            Model m = SyntheticModels.build("rrdbnet-x4-6b", 2026);
            Tensor in = Tensor.wrap(Randoms.floats(new Random(Randoms.seed()), 64 * 64 * 3, 1f), 1, 64, 64, 3);
            try (Session a = device.openSession(Precision.F16); GraphRunner ra = new GraphRunner(m.graph(), m.weights(), a)) {
                long t0 = System.nanoTime();
                float[] outA = ra.run(in).toArray();
                double msA = (System.nanoTime() - t0) / 1e6;
                Map<String, Object> stored = device.serializedPlanStats();
                long files;
                try (Stream<Path> f = Files.walk(cache.resolve("conv-plans"))) {
                    files = f.filter(p -> p.toString().endsWith(".json")).count();
                }
                System.out.printf("GPU serialised plans: session A built in %.0f ms (%s ms of plans), stored %s, %d files%n",
                        msA, a.diagnostics().get("conv_plan_build_ms"), stored, files);
                assertTrue(count(stored, "stored") > 0, "the runtime-compiled first choices were serialised: " + stored);
                assertEquals(count(stored, "stored"), files, "each one also as a file, for later processes");
                // A still holds its graphs (it gives them back between jobs, and has not): B must make its own, from the serialised plans
                try (Session b = device.openSession(Precision.F16); GraphRunner rb = new GraphRunner(m.graph(), m.weights(), b)) {
                    long t1 = System.nanoTime();
                    float[] outB = rb.run(in).toArray();
                    double msB = (System.nanoTime() - t1) / 1e6;
                    Map<String, Object> after = device.serializedPlanStats();
                    System.out.printf("GPU serialised plans: session B in %.0f ms (%s ms of plans); %s%n", msB, b.diagnostics().get("conv_plan_build_ms"), after);
                    assertTrue(count(after, "hits") > 0, "session B deserialised plans: " + after);
                    assertEquals(0L, count(after, "refused"), "cuDNN took every serialised plan back: " + after);
                    assertArrayEquals(outA, outB, "a deserialised plan is the same kernel: the same bits");
                }
            }
        }
    }
}
