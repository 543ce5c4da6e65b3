package dev.headroom.runtime.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import dev.headroom.core.Precision;
import dev.headroom.core.residency.ResidencyPolicy.Priority;
import dev.headroom.models.Model;
import dev.headroom.models.SyntheticModels;
import dev.headroom.runtime.GraphRunner;
import dev.headroom.runtime.Residency;
import dev.headroom.runtime.Session;
import dev.headroom.runtime.Tensor;
import dev.headroom.testing.Randoms;
import dev.headroom.testing.SystemProperties;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Sessions of one device that meet the same shapes at once time each shape once between them
 * ({@link ConvChoiceStore#turn}) and all end on that one timed choice, so their outputs are the same
 * bits. Before, each session timed every shape itself and could keep another winner (in the server,
 * 13 of 67 RRDBNet outputs differed by up to 3 LSB). Timing is allowed at once here
 * (headroom.conv-tuning-share), from a cache folder with nothing remembered. The second test: with
 * full timing (every shape timed before its first run), sessions meeting a new shape together wait
 * for the one that times it.
 */
class GpuSharedChoicesTest extends GpuDeviceTestBase {
    @TempDir
    Path cache;

    /** What a session ended with: its last output, its engines, and its timing counts. */
    private record Outcome(float[] out, Object strategies, int timedHere, int adopted, int passes) {}

    @Test
    void sessionsTimeEachShapeOnceAndRunTheOneTimedChoice() throws Exception {
        sessionsShareTimedChoices("budget");
    }

    @Test
    void withFullTimingSessionsMeetingANewShapeWaitForTheOneTimingIt() throws Exception {
        sessionsShareTimedChoices("full");
    }

    private void sessionsShareTimedChoices(String timing) throws Exception {
        int sessions = 4;
        Model model = SyntheticModels.build("rrdbnet-x4", 2026);
        Tensor tile = Tensor.wrap(Randoms.floats(new Random(Randoms.seed()), 64 * 64 * 3, 0.3f), 1, 64, 64, 3);
        // budget: untimed first, timed once repeated (scripts/device-test sets full); a shape is timed as soon as it repeats
        var props = SystemProperties.set("headroom.cache", cache.toString(), "headroom.conv-timing", timing, "headroom.conv-tuning-share", "1e9");
        ExecutorService pool = Executors.newFixedThreadPool(sessions);
        try (Residency models = new Residency(device, 0)) {
            Residency.Loader l = () -> new Residency.Source(model.graph(), model.weights(), 1f);
            CyclicBarrier start = new CyclicBarrier(sessions);
            List<Future<Outcome>> results = new ArrayList<>();
            for (int i = 0; i < sessions; i++) {
                results.add(pool.submit(() -> {
                    try (Session s = device.openSession(Precision.F16); Residency.Lease m = models.acquire("rrdbnet", Priority.NORMAL, l, s);
                         GraphRunner runner = new GraphRunner(m.graph(), m.weights(), s)) {
                        runner.record(false);   // every pass eager, so every convolution call may settle its choice
                        start.await();
                        float[] out = null;
                        int passes = 0;
                        long until = System.nanoTime() + 60_000_000_000L;
                        // until no shape is left untimed: a session runs on (many quick passes) while another times a shape
                        while (passes < 4 || System.nanoTime() < until && s.diagnostics().get("conv_strategies").toString().contains("heuristic")) {
                            out = runner.run(tile).data;
                            passes++;
                        }
                        Map<String, Object> d = s.diagnostics();
                        return new Outcome(out, d.get("conv_strategies"), ((Number) d.get("conv_shapes_timed")).intValue(),
                                ((Number) d.get("conv_timed_adopted")).intValue(), passes);
                    }
                }));
            }
            List<Outcome> got = new ArrayList<>();
            for (Future<Outcome> f : results) got.add(f.get());
            int timed = got.stream().mapToInt(Outcome::timedHere).sum();
            int shapes = ((Map<?, ?>) got.getFirst().strategies()).values().stream().mapToInt(v -> ((Number) v).intValue()).sum();
            for (int i = 0; i < sessions; i++) {
                Outcome o = got.get(i);
                System.out.printf("session %d: %d passes, timed %d shapes, took %d timed by others: %s%n", i, o.passes(), o.timedHere(), o.adopted(), o.strategies());
            }
            for (Outcome o : got) {
                assertFalse(o.strategies().toString().contains("heuristic"), "every shape timed once seen often enough: " + o.strategies());
                assertEquals(got.getFirst().strategies(), o.strategies(), "one choice per shape on the device");
                assertArrayEquals(got.getFirst().out(), o.out(), "the same choices, so the same bits");
            }
            assertEquals(shapes, timed, "each of the " + shapes + " shapes timed by exactly one of the " + sessions + " sessions");
        } finally {
            pool.shutdown();
            props.close();
        }
        assertEquals(0, device.memory().allocatedBytes(), "all sessions' memory given back");
    }
}
