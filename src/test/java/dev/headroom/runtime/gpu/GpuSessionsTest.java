package dev.headroom.runtime.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.headroom.core.Precision;
import dev.headroom.core.residency.ResidencyPolicy.Priority;
import dev.headroom.models.Model;
import dev.headroom.models.SyntheticModels;
import dev.headroom.runtime.GraphRunner;
import dev.headroom.runtime.Residency;
import dev.headroom.runtime.Session;
import dev.headroom.runtime.Tensor;
import dev.headroom.testing.Randoms;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/**
 * One GPU, several sessions on several threads: the same small-tile jobs run concurrently and one
 * after another give identical outputs (the throughput ratio is printed), and sessions of different
 * precisions share one ledger. (Reloads from the host cache: {@link GpuHostCacheTest}.)
 */
class GpuSessionsTest extends GpuDeviceTestBase {
    /** Runs {@code tiles} one after another in {@code s}, waiting for each output. */
    private static List<float[]> run(Session s, Residency.Lease m, List<Tensor> tiles) {
        List<float[]> out = new ArrayList<>();
        try (GraphRunner runner = new GraphRunner(m.graph(), m.weights(), s)) {
            for (Tensor t : tiles) out.add(runner.run(t).data);
        }
        return out;
    }

    @Test
    void sessionsOnThreadsGiveTheOutputsOfOneAfterAnother() throws Exception {
        int sessions = 4, perSession = 16;
        Model model = SyntheticModels.build("rrdbnet-x4", 2026);
        Random r = new Random(Randoms.seed());
        List<List<Tensor>> tiles = new ArrayList<>();
        for (int s = 0; s < sessions; s++) {
            List<Tensor> mine = new ArrayList<>();
            for (int j = 0; j < perSession; j++) mine.add(Tensor.wrap(Randoms.floats(r, 64 * 64 * 3, 0.3f), 1, 64, 64, 3));
            tiles.add(mine);
        }
        try (Residency models = new Residency(device, 0)) {
            Residency.Loader l = () -> new Residency.Source(model.graph(), model.weights(), 1f);
            List<List<float[]>> alone = new ArrayList<>();
            long sequential;
            try (Session s = device.openSession(Precision.F16); Residency.Lease m = models.acquire("rrdbnet", Priority.NORMAL, l, s)) {
                run(s, m, tiles.getFirst());   // choices made and remembered by the device; recordings tried
                long t0 = System.nanoTime();
                for (List<Tensor> mine : tiles) alone.add(run(s, m, mine));
                sequential = System.nanoTime() - t0;
            }
            ExecutorService pool = Executors.newFixedThreadPool(sessions);
            CyclicBarrier start = new CyclicBarrier(sessions + 1), end = new CyclicBarrier(sessions + 1);
            List<Future<List<float[]>>> results = new ArrayList<>();
            for (int i = 0; i < sessions; i++) {
                List<Tensor> mine = tiles.get(i);
                results.add(pool.submit(() -> {
                    try (Session s = device.openSession(Precision.F16); Residency.Lease m = models.acquire("rrdbnet", Priority.NORMAL, l, s)) {
                        run(s, m, mine.subList(0, 2));   // warm: recalls the choices, records
                        start.await();
                        List<float[]> out = run(s, m, mine);
                        end.await();
                        return out;
                    }
                }));
            }
            start.await();
            long t0 = System.nanoTime();
            end.await();
            long concurrent = System.nanoTime() - t0;
            for (int i = 0; i < sessions; i++) {
                List<float[]> got = results.get(i).get();
                for (int j = 0; j < perSession; j++) assertArrayEquals(alone.get(i).get(j), got.get(j), "session " + i + " tile " + j);
            }
            pool.shutdown();
            System.out.printf("RRDBNet x4 fp16, %d sessions x %d tiles of 64x64: concurrently %.1f ms, one after another %.1f ms: throughput ratio %.2f%n",
                    sessions, perSession, concurrent / 1e6, sequential / 1e6, (double) sequential / concurrent);
        }
        assertEquals(0, device.memory().allocatedBytes(), "all sessions' memory given back");
    }

    @Test
    void sessionsOfDifferentPrecisionsShareOneLedger() throws Exception {
        Model model = SyntheticModels.build("srvgg-x4", 7);
        Tensor in = Tensor.wrap(Randoms.floats(new Random(Randoms.seed()), 48 * 40 * 3, 0.3f), 1, 40, 48, 3);
        Precision[] ps = {Precision.F16, Precision.F32, Precision.BF16};
        try (Residency models = new Residency(device, 0)) {
            Residency.Loader l = () -> new Residency.Source(model.graph(), model.weights(), 1f);
            float[][] alone = new float[ps.length][];
            for (int i = 0; i < ps.length; i++) {
                try (Session s = device.openSession(ps[i]); var m = models.acquire("srvgg", Priority.NORMAL, l, s)) {
                    alone[i] = run(s, m, List.of(in)).getFirst();
                }
            }
            ExecutorService pool = Executors.newFixedThreadPool(ps.length);
            List<Future<float[]>> got = new ArrayList<>();
            for (Precision p : ps) {
                got.add(pool.submit(() -> {
                    try (Session s = device.openSession(p); var m = models.acquire("srvgg", Priority.NORMAL, l, s)) {
                        float[] out = null;
                        for (int k = 0; k < 5; k++) out = run(s, m, List.of(in)).getFirst();
                        return out;
                    }
                }));
            }
            for (int i = 0; i < ps.length; i++) assertArrayEquals(alone[i], got.get(i).get(), ps[i] + " beside the others");
            pool.shutdown();
            long models3 = device.memory().ledger().children().getFirst().children().size();
            assertEquals(3, models3, "one weights node per model and precision, in one ledger");
        }
    }
}
