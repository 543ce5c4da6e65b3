package dev.headroom.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.Precision;
import dev.headroom.core.graph.Node;
import dev.headroom.core.graph.Op;
import dev.headroom.core.residency.ResidencyPolicy.Priority;
import dev.headroom.core.residency.ResidencyPolicy.Status;
import dev.headroom.core.residency.ResidencyPolicy.Where;
import dev.headroom.core.residency.StreamSplit;
import dev.headroom.runtime.cpu.CpuDevice;
import dev.headroom.runtime.cpu.CpuOps;
import dev.headroom.runtime.memory.MemoryOptions;
import dev.headroom.runtime.memory.MemoryTrace;
import dev.headroom.testing.Randoms;
import dev.headroom.testing.SmallModels;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * A streamed model as a residency component, on the CPU device: loaded once, shared by sessions on
 * several threads (their passes taking turns on its slots), outputs bit for bit those of the model
 * resident, its resident layers and slots charged to its own node within its budget, evicted when
 * idle with its staged layers kept as its host copy (or sent back to disk by a host cache too small
 * for them), and the ledger back at its baseline.
 */
class ResidencyStreamTest {
    private static final long MiB = 1L << 20;
    private static final String KEY = "big " + Precision.F32;

    private static long kernelBytes(Residency.Source src, Device device) {
        long b = 0;
        for (Node n : src.graph().nodes()) if (n.op() instanceof Op.Conv2d c) b += device.kernelBytes(c, src.weights().get(c.weight()), Precision.F32);
        return b;
    }

    /** The same model resident, one output per input: what every streamed run must equal bit for bit. */
    private static List<float[]> resident(Residency.Source src, List<Tensor> inputs) {
        List<float[]> out = new ArrayList<>();
        try (CpuOps ops = new CpuOps(); GraphRunner r = new GraphRunner(src.graph(), src.weights(), ops)) {
            for (Tensor in : inputs) out.add(r.run(in).toArray());
        }
        return out;
    }

    private static List<Tensor> inputs(int count) {
        Random r = new Random(Randoms.seed());
        List<Tensor> in = new ArrayList<>();
        for (int i = 0; i < count; i++) in.add(Tensor.wrap(Randoms.floats(r, 12 * 10 * 3, 0.5f), 1, 12, 10, 3));
        return in;
    }

    private static Residency.Loader counting(Residency.Source src, AtomicInteger reads) {
        return () -> {
            reads.incrementAndGet();
            return src;
        };
    }

    private static Status status(Residency models) {
        return models.status().stream().filter(s -> s.key().equals(KEY)).findFirst().orElseThrow();
    }

    @Test
    void sessionsOnSeveralThreadsShareOneStreamedModelAndGetTheResidentOutputs() throws Exception {
        Residency.Source src = SmallModels.build("rrdbnet", 15);
        List<Tensor> inputs = inputs(4);
        List<float[]> expected = resident(src, inputs);
        AtomicInteger reads = new AtomicInteger();
        try (CpuDevice device = new CpuDevice(new MemoryOptions(256 * MiB, true, 10_000, dev.headroom.runtime.memory.Pressure.Thresholds.DEFAULT));
             Residency models = new Residency(device, 64 * MiB)) {
            var memory = device.memory();
            long baseline = memory.ledger().used();
            long budget = kernelBytes(src, device) / 3;
            int threads = 4, jobs = 5;
            CyclicBarrier together = new CyclicBarrier(threads);
            PreparedWeights[] seen = new PreparedWeights[threads];
            long[] charged = new long[threads];
            ExecutorService pool = Executors.newFixedThreadPool(threads);
            try {
                List<Future<?>> done = new ArrayList<>();
                for (int t = 0; t < threads; t++) {
                    int me = t;
                    done.add(pool.submit(() -> {
                        for (int job = 0; job < jobs; job++) {
                            try (Session s = device.openSession();
                                 Residency.Lease lease = models.acquire("big", Priority.NORMAL, counting(src, reads), s, budget);
                                 GraphRunner runner = new GraphRunner(lease.graph(), lease.weights(), s)) {
                                assertNotNull(lease.weights().stream(), "streamed under a third of its kernels");
                                if (job == 0) {
                                    seen[me] = lease.weights();
                                    charged[me] = memory.weights(KEY).used();
                                    together.await(30, TimeUnit.SECONDS);   // every thread holds a lease at once
                                }
                                for (int pass = 0; pass < 2; pass++) {
                                    int i = (me + job + pass) % inputs.size();
                                    assertArrayEquals(expected.get(i), runner.run(inputs.get(i)).toArray(), "thread " + me + " job " + job + " input " + i);
                                }
                            }
                        }
                        return null;
                    }));
                }
                for (Future<?> f : done) f.get(120, TimeUnit.SECONDS);   // a watchdog: a deadlock fails here, it does not hang the build
            } finally {
                pool.shutdownNow();
            }
            assertEquals(1, reads.get(), "loaded once");
            for (PreparedWeights p : seen) assertSame(seen[0], p, "one copy shared by every session");
            StreamSplit split = seen[0].stream().split();
            assertTrue(split.streamedCount() > 0 && split.deviceBytes() <= budget, split + " within " + budget);
            for (long c : charged) assertEquals(split.deviceBytes(), c, "its node holds its resident layers and slots, nothing else");
            assertTrue(seen[0].stream().loads() > 0, "layers were copied into slots");
            assertEquals(split.deviceBytes(), memory.weights(KEY).used(), "idle, still on the device");
            assertEquals(Where.DEVICE, status(models).where());

            // idle: evictable; its staged layers are its host copy (within the 64 MiB cache)
            assertTrue(models.makeRoom(memory.headroom() + 1) >= split.deviceBytes());
            assertEquals(Where.HOST, status(models).where());
            assertTrue(status(models).hostBytes() > 0, "the host copy counts against the host cache");
            assertEquals(0, memory.weights(KEY).used(), "slots and resident layers freed");
            try (Session s = device.openSession();
                 Residency.Lease lease = models.acquire("big", Priority.NORMAL, counting(src, reads), s, budget);
                 GraphRunner runner = new GraphRunner(lease.graph(), lease.weights(), s)) {
                assertEquals(1, reads.get(), "reloaded from the host copy, not read again");
                assertEquals(split.deviceBytes(), memory.weights(KEY).used());
                for (int i = 0; i < inputs.size(); i++) assertArrayEquals(expected.get(i), runner.run(inputs.get(i)).toArray(), "after the reload, input " + i);
            }
            assertEquals(List.of(1L, 1L, 1L), List.of(models.counts()[0], models.counts()[1], models.counts()[2]));
            var traced = memory.trace().events().stream().filter(e -> e.kind() == MemoryTrace.Kind.LOAD).findFirst().orElseThrow();
            assertTrue(traced.detail().contains("streamed"), traced.detail());
            models.evict("big", Precision.F32);
            memory.emptyCache();
            assertEquals(baseline, memory.ledger().used(), "the ledger is back at its baseline");
        }
    }

    @Test
    void aHostCacheTooSmallForTheStagedLayersSendsTheModelBackToDisk() throws Exception {
        Residency.Source src = SmallModels.build("rrdbnet", 16);
        List<Tensor> inputs = inputs(1);
        float[] expected = resident(src, inputs).getFirst();
        AtomicInteger reads = new AtomicInteger();
        try (CpuDevice device = new CpuDevice(MemoryOptions.DEFAULT.withBudget(256 * MiB)); Residency models = new Residency(device, 1024)) {
            long budget = kernelBytes(src, device) / 2;
            for (int round = 1; round <= 2; round++) {
                try (Session s = device.openSession();
                     Residency.Lease lease = models.acquire("big", Priority.NORMAL, counting(src, reads), s, budget);
                     GraphRunner runner = new GraphRunner(lease.graph(), lease.weights(), s)) {
                    assertNotNull(lease.weights().stream());
                    assertArrayEquals(expected, runner.run(inputs.getFirst()).toArray(), "round " + round);
                }
                models.makeRoom(device.memory().headroom() + 1);
                assertEquals(Where.DISK, status(models).where(), "a 1 KiB host cache keeps no copy");
                assertEquals(round, reads.get(), "read from its file each time");
                device.memory().emptyCache();
                assertEquals(0, device.memory().ledger().used());
            }
        }
    }

    @Test
    void aBudgetTooSmallForTheSlotsIsRefusedAndLeavesNothingCharged() throws Exception {
        Residency.Source src = SmallModels.build("rrdbnet", 17);
        try (CpuDevice device = new CpuDevice(MemoryOptions.DEFAULT.withBudget(256 * MiB)); Residency models = new Residency(device, 64 * MiB);
             Session s = device.openSession()) {
            var e = assertThrows(IllegalArgumentException.class, () -> models.acquire("big", Priority.NORMAL, () -> src, s, 1000));
            assertTrue(e.getMessage().contains("give the weights at least"), e.getMessage());
            assertEquals(0, device.memory().ledger().used());
            assertEquals(Where.DISK, status(models).where());
            assertEquals(0, status(models).refs(), "the failed acquire holds no reference");
        }
    }
}
