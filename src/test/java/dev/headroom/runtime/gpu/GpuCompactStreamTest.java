package dev.headroom.runtime.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.MapWeights;
import dev.headroom.core.Precision;
import dev.headroom.core.TensorData;
import dev.headroom.core.Weights;
import dev.headroom.core.graph.Act;
import dev.headroom.core.graph.Node;
import dev.headroom.core.graph.Op;
import dev.headroom.core.graph.Padding;
import dev.headroom.core.quant.Compact;
import dev.headroom.core.quant.WeightFormat;
import dev.headroom.cuda.Driver;
import dev.headroom.runtime.DeviceBuffer;
import dev.headroom.runtime.GraphRunner;
import dev.headroom.runtime.Ops;
import dev.headroom.runtime.PreparedWeights;
import dev.headroom.runtime.Residency;
import dev.headroom.runtime.Tensor;
import dev.headroom.runtime.memory.Budget;
import dev.headroom.testing.Randoms;
import dev.headroom.testing.SmallModels;
import java.lang.foreign.MemorySegment;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Compact kernels expanded on the GPU (expand.cu) against the host's expansion, bit for bit, and
 * weight streaming on the GPU (copy stream, events, slots) against a resident run, bit for bit.
 */
@org.junit.jupiter.api.TestMethodOrder(org.junit.jupiter.api.MethodOrderer.OrderAnnotation.class)
class GpuCompactStreamTest extends GpuDeviceTestBase {
    /** Both model tests run this input shape, so the second finds every convolution choice made (timing them takes most of the time). */
    private static final int H = 48, W = 40;
    private final Random r = new Random(Randoms.seed());

    /** {@code n} bytes of device memory (a downcall takes only native memory, so through an off-heap buffer). */
    private static byte[] bytes(long address, long n) {
        try (java.lang.foreign.Arena a = java.lang.foreign.Arena.ofConfined()) {
            MemorySegment host = a.allocate(n);
            Driver.get().copyDtoH(host, address, n);
            return host.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
        }
    }

    @Test
    @org.junit.jupiter.api.Order(3)
    void expansionOnTheGpuEqualsTheHostsBitForBit() {
        long t0 = System.nanoTime();
        int[][] shapes = {{3, 64, 32}, {1, 5, 7}, {3, 3, 13}, {3, 768, 256}};
        for (Precision p : Precision.values()) {
            try (CudaOps s = (CudaOps) device.openSession(p)) {
                for (int[] sh : shapes) {
                    int k = sh[0], ci = sh[1], co = sh[2], n = k * k * ci * co;
                    Op.Conv2d op = new Op.Conv2d("w", "b", k, k, ci, co, Padding.SAME, Act.NONE, 0f, 0f);
                    float[] w = Randoms.floats(r, n, 0.05f);
                    w[0] = 0;
                    TensorData hwio = new TensorData("w", new int[] {k, k, ci, co}, w);
                    TensorData oihwNf4 = new TensorData("w", new int[] {co, ci, k, k}, Compact.nf4(w, 64)).oihwToHwio();
                    TensorData[] kernels = {
                            new TensorData("w", hwio.shape(), Compact.int8(w, co)),
                            new TensorData("w", hwio.shape(), Compact.fp8(w, co)),
                            new TensorData("w", hwio.shape(), Compact.nf4(w, 64)),
                            oihwNf4};
                    for (TensorData kernel : kernels) {
                        String what = p + " " + kernel.compact().scheme() + (kernel.storedOihw() ? " oihw " : " ") + java.util.Arrays.toString(sh);
                        try (Ops.ConvWeights host = device.prepareConv(op, kernel.data(), null, null, p);
                             Ops.ConvWeights compact = device.prepareConv(op, kernel, null, null, p)) {
                            assertTrue(compact instanceof CompactWeights, what + ": compact on the device");
                            CompactWeights c = (CompactWeights) compact;
                            assertTrue(n < 100_000 || c.blob.bytes() < (long) n * p.bytes, what + ": " + c.blob.bytes() + " bytes held, dense " + n * p.bytes);
                            CudaConvWeights expanded = s.expander().expand(c);
                            s.synchronize();
                            DeviceBuffer ref = ((CudaConvWeights) host).kernel;
                            assertArrayEquals(bytes(ref.address(), (long) n * p.bytes), bytes(expanded.kernel.address(), (long) n * p.bytes), what);
                        }
                    }
                }
            }
        }
        System.out.printf("expansion: 3 precisions x 4 shapes x 4 compact kernels equal to the host's bit for bit (%.1f s)%n", (System.nanoTime() - t0) / 1e9);
    }

    /** The same weights with every compact kernel expanded on the host: the old path, the reference. */
    private static Weights hostExpanded(Weights w) {
        Map<String, TensorData> out = new LinkedHashMap<>();
        for (String k : w.names()) {
            TensorData t = w.get(k);
            out.put(k, t.compact() == null ? t : new TensorData(k, t.shape(), t.data()));
        }
        return new MapWeights(out, "host-expanded");
    }

    @Test
    @org.junit.jupiter.api.Order(2)
    void compactModelsRunAsTheirHostExpansionsDo() {
        long t0 = System.nanoTime();
        Residency.Source model = SmallModels.build("rrdbnet", 5);
        Tensor in = Tensor.wrap(Randoms.floats(r, H * W * 3, 0.5f), 1, H, W, 3);
        for (WeightFormat f : new WeightFormat[] {WeightFormat.INT8, WeightFormat.FP8, WeightFormat.NF4}) {
            Weights w = f.apply(model.weights());
            try (CudaOps s = (CudaOps) device.openSession(Precision.F16)) {
                float[] expected, got;
                try (GraphRunner host = new GraphRunner(model.graph(), hostExpanded(w), s)) {
                    expected = host.run(in).toArray();
                }
                try (GraphRunner onDevice = new GraphRunner(model.graph(), w, s)) {
                    for (int pass = 0; pass < 3; pass++) {   // the third may be a replay of a recording
                        got = onDevice.run(in).toArray();
                        assertArrayEquals(expected, got, f + " pass " + pass);
                    }
                    System.out.printf("compact %s: expanded on the GPU, %d replays, output equal to the host expansion's (%.1f s)%n", f, onDevice.replays(),
                            (System.nanoTime() - t0) / 1e9);
                }
            }
        }
    }

    private static long weightsUsed() {
        return device.memory().ledger().children().stream().filter(b -> b.name().equals("weights")).findFirst().orElseThrow().used();
    }

    @Test
    @org.junit.jupiter.api.Order(1)
    void streamedWeightsRunAsResidentOnesDo() {
        long t0 = System.nanoTime();
        Residency.Source model = SmallModels.build("rrdbnet", 9);
        Tensor in = Tensor.wrap(Randoms.floats(r, H * W * 3, 0.5f), 1, H, W, 3);
        for (WeightFormat f : new WeightFormat[] {WeightFormat.FP16, WeightFormat.NF4}) {
            Weights w = f.apply(model.weights());
            try (CudaOps s = (CudaOps) device.openSession(Precision.F16)) {
                float[] expected;
                try (GraphRunner resident = new GraphRunner(model.graph(), w, s)) {
                    expected = resident.run(in).toArray();
                }
                long total = 0, largest = 0;
                for (Node n : model.graph().nodes()) {
                    if (n.op() instanceof Op.Conv2d c) {
                        long b = s.kernelBytes(c, w.get(c.weight()));
                        total += b;
                        largest = Math.max(largest, b);
                    }
                }
                for (int slots = 1; slots <= 3; slots++) {
                    long before = weightsUsed(), budget = Math.max(total / 3, slots * largest);
                    PreparedWeights p;
                    try (var scope = device.memory().tag("weights", null)) {   // resident layers charged as weights, as a model's are
                        p = PreparedWeights.streamed(model.graph(), w, s, budget, slots);
                    }
                    try (p; GraphRunner streamed = new GraphRunner(model.graph(), p, s)) {
                        assertNotNull(p.stream());
                        long held = weightsUsed() - before;
                        assertTrue(held <= budget + 64 * 1024, f + ": " + held + " bytes of weights on the device within " + budget + " (+ biases)");
                        for (int pass = 0; pass < 4; pass++) assertArrayEquals(expected, streamed.run(in).toArray(), f + " slots " + slots + " pass " + pass);
                        assertEquals(0, streamed.replays(), "streamed passes are not recorded");
                        System.out.println("streamed " + f + " slots " + slots + ": " + p.stream().split().streamedCount() + " of "
                                + p.stream().split().resident().length + " layers streamed, " + p.stream().loads() + " copies in 4 passes, "
                                + held + " weight bytes on the device, budget " + budget + String.format(" (%.1f s); ", (System.nanoTime() - t0) / 1e9)
                                + streamed.recordingRefused());
                    }
                    assertEquals(before, weightsUsed(), "slots, staged biases and resident layers given back");
                }
            }
        }
    }

    /**
     * A streamed model shared through the residency manager by two sessions on two threads at once
     * (one set of slots on the device, each pass bound to its session's stream, the copy stream
     * waiting for the previous session's last uses of the slots): every pass equals the resident run bit
     * for bit; evicted when idle, it keeps its staged layers pinned as its host copy and comes back
     * from it; the ledger's weights are back where they started at the end.
     */
    @Test
    @org.junit.jupiter.api.Order(4)
    void sessionsShareAStreamedModelThroughTheResidencyManager() throws Exception {
        Residency.Source source = SmallModels.build("rrdbnet", 9);
        // fp16 kernels, as the session computes: resident and streamed layers then hold the same halves
        Residency.Source model = new Residency.Source(source.graph(), WeightFormat.FP16.apply(source.weights()), source.valueRange());
        Tensor[] in = {Tensor.wrap(Randoms.floats(r, H * W * 3, 0.5f), 1, H, W, 3), Tensor.wrap(Randoms.floats(r, H * W * 3, 0.5f), 1, H, W, 3)};
        float[][] expected = new float[2][];
        long total = 0;
        try (CudaOps s = (CudaOps) device.openSession(Precision.F16); GraphRunner resident = new GraphRunner(model.graph(), model.weights(), s)) {
            for (int i = 0; i < 2; i++) expected[i] = resident.run(in[i]).toArray();
            for (Node n : model.graph().nodes()) if (n.op() instanceof Op.Conv2d c) total += s.kernelBytes(c, model.weights().get(c.weight()));
        }
        long before = weightsUsed(), budget = total / 3;
        try (Residency models = new Residency(device, 256L << 20)) {
            var together = new java.util.concurrent.CyclicBarrier(2);
            PreparedWeights[] seen = new PreparedWeights[2];
            var pool = java.util.concurrent.Executors.newFixedThreadPool(2);
            try {
                var jobs = new java.util.ArrayList<java.util.concurrent.Future<?>>();
                for (int t = 0; t < 2; t++) {
                    int me = t;
                    jobs.add(pool.submit(() -> {
                        try (CudaOps s = (CudaOps) device.openSession(Precision.F16);
                             Residency.Lease lease = models.acquire("m", dev.headroom.core.residency.ResidencyPolicy.Priority.NORMAL, () -> model, s, budget);
                             GraphRunner runner = new GraphRunner(lease.graph(), lease.weights(), s)) {
                            seen[me] = lease.weights();
                            together.await(60, java.util.concurrent.TimeUnit.SECONDS);
                            for (int pass = 0; pass < 4; pass++) {
                                int i = (me + pass) % 2;
                                assertArrayEquals(expected[i], runner.run(in[i]).toArray(), "thread " + me + " pass " + pass);
                            }
                        }
                        return null;
                    }));
                }
                for (var j : jobs) j.get(120, java.util.concurrent.TimeUnit.SECONDS);
            } finally {
                pool.shutdownNow();
            }
            assertTrue(seen[0] == seen[1], "one copy shared");
            assertNotNull(seen[0].stream(), "streamed under a third of its kernels");
            long held = weightsUsed() - before;
            assertTrue(held > 0 && held <= budget + 64 * 1024, held + " bytes of weights within " + budget + " (+ biases)");
            assertTrue(models.makeRoom(device.memory().headroom() + 1) > 0, "evicted when idle");
            assertEquals(before, weightsUsed(), "its slots and resident layers freed");
            try (CudaOps s = (CudaOps) device.openSession(Precision.F16);
                 Residency.Lease lease = models.acquire("m", dev.headroom.core.residency.ResidencyPolicy.Priority.NORMAL, () -> model, s, budget);
                 GraphRunner runner = new GraphRunner(lease.graph(), lease.weights(), s)) {
                for (int i = 0; i < 2; i++) assertArrayEquals(expected[i], runner.run(in[i]).toArray(), "after the reload from the host copy, input " + i);
            }
            assertEquals(1, models.counts()[0], "loaded from its source once");
            assertEquals(1, models.counts()[1], "reloaded from its host copy once");
            System.out.println("shared streamed model: " + seen[0].stream().describe() + ", " + held + " weight bytes on the device");
        }
        assertEquals(before, weightsUsed(), "the ledger's weights back where they started");
    }
}
