package dev.headroom.runtime.gpu;

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
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The device's plan service on a GPU: a second session takes the first one's cuDNN graphs (built
 * on the service's handles, executed with its own handle on its own stream) instead of building
 * them, and gets the same output; two sessions running the same shapes at once each hold graphs of
 * their own; closing the sessions gives every graph back (the device's close then audits it).
 */
class GpuPlanServiceTest extends GpuDeviceTestBase {
    @TempDir
    Path cache;

    private static long count(Map<String, Object> stats, String key) {
        return ((Number) stats.get(key)).longValue();
    }

    private static double worst(float[] a, float[] b) {
        double w = 0;
        for (int i = 0; i < a.length; i++) w = Math.max(w, Math.abs(a[i] - b[i]));
        return w;
    }

    @Test
    void aSecondSessionTakesTheFirstOnesGraphsAndTwoAtOnceNeverShareOne() throws Exception {
        // scripts/device-test times every shape: here they start untimed
        try (var props = SystemProperties.set("headroom.conv-timing", "budget", "headroom.conv-start", "first", "headroom.cache", cache.toString())) {
            Model m = SyntheticModels.build("rrdbnet-x4-6b", 2026);
            Tensor in = Tensor.wrap(Randoms.floats(new Random(Randoms.seed()), 64 * 64 * 3, 1f), 1, 64, 64, 3);
            try (Session a = device.openSession(Precision.F16); GraphRunner ra = new GraphRunner(m.graph(), m.weights(), a)) {
                float[] outA = ra.run(in).toArray();
                a.trim();   // between jobs: its graphs go back to the device
                Map<String, Object> afterA = device.planStats();
                long lentA = count(a.diagnostics(), "conv_graphs_lent");
                assertTrue(lentA > 0, "session A's graphs came from the device: " + a.diagnostics());
                assertEquals(0L, count(afterA, "lent"), "all given back at trim: " + afterA);
                float[] outB;
                Map<String, Object> dB, afterB;
                try (Session b = device.openSession(Precision.F16); GraphRunner rb = new GraphRunner(m.graph(), m.weights(), b)) {
                    outB = rb.run(in).toArray();
                    dB = b.diagnostics();
                    afterB = device.planStats();
                    System.out.printf("GPU plan service: session A %s; session B %s; device %s%n", afterA, dB, afterB);
                    assertEquals(count(afterA, "builds"), count(afterB, "builds"), "session B built nothing on its thread: " + afterB);
                    assertEquals(count(afterA, "background_builds"), count(afterB, "background_builds"), "nor on the workers: " + afterB);
                    assertTrue(count(dB, "conv_graphs_lent") >= lentA, "session B took A's graphs: " + dB);
                    double w = worst(outA, outB);
                    System.out.printf("GPU plan service: a graph finalised on the service's handle, run on session B's: max difference %.6f%n", w);
                    assertTrue(w < 0.02, "the same plans give the same output: max difference " + w);

                    // both sessions at once on two threads: B holds the graphs, so A builds its own; neither runs one of the other's
                    CompletableFuture<float[]> runA = CompletableFuture.supplyAsync(() -> {
                        float[] o = null;
                        for (int i = 0; i < 3; i++) o = ra.run(in).toArray();
                        return o;
                    });
                    float[] againB = null;
                    for (int i = 0; i < 3; i++) againB = rb.run(in).toArray();
                    float[] againA = runA.join();
                    Map<String, Object> both = device.planStats();
                    System.out.printf("GPU plan service, two sessions at once: device %s; A %s%n", both, a.diagnostics());
                    assertTrue(count(both, "lent") >= 2L * count(dB, "conv_graphs_lent"), "each session holds graphs of its own: " + both);
                    assertTrue(worst(againA, outA) < 0.02 && worst(againB, outA) < 0.02,
                            "concurrent sessions agree: " + worst(againA, outA) + ", " + worst(againB, outA));
                }
            }
            Map<String, Object> closed = device.planStats();
            assertEquals(0L, count(closed, "lent"), "closing the sessions gave every graph back: " + closed);
            assertTrue(count(closed, "handles") <= count(closed, "handles_max"), closed.toString());
        }
    }
}
