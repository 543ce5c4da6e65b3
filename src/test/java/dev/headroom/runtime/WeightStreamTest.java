package dev.headroom.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.Weights;
import dev.headroom.core.graph.Graph;
import dev.headroom.core.graph.Node;
import dev.headroom.core.graph.Op;
import dev.headroom.core.quant.WeightFormat;
import dev.headroom.core.residency.StreamSplit;
import dev.headroom.runtime.cpu.CpuOps;
import dev.headroom.runtime.memory.Budget;
import dev.headroom.testing.Randoms;
import dev.headroom.testing.SmallModels;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Weight streaming through the real runner on the CPU backend: the same outputs as resident, within the budget, ledger back to zero. */
class WeightStreamTest {

    private static long kernelBytes(Graph g, Weights w, Ops ops) {
        long b = 0;
        for (Node n : g.nodes()) if (n.op() instanceof Op.Conv2d c) b += ops.kernelBytes(c, w.get(c.weight()));
        return b;
    }

    private static long weightsUsed(CpuOps ops) {
        Budget root = ops.memory().ledger();
        return root.children().stream().filter(b -> b.name().equals("weights")).findFirst().orElseThrow().used();
    }

    @Test
    void streamedRunsEqualResidentOnesAndStayWithinTheirBudget() {
        Random r = new Random(Randoms.seed());
        var model = SmallModels.build("rrdbnet", 15);
        for (WeightFormat format : new WeightFormat[] {WeightFormat.AS_STORED, WeightFormat.NF4}) {
            Weights w = format.apply(model.weights());
            Tensor in = Tensor.wrap(Randoms.floats(r, 12 * 10 * 3, 0.5f), 1, 12, 10, 3);
            for (boolean bands : new boolean[] {true, false}) {
                float[] expected;
                try (CpuOps ops = new CpuOps(); GraphRunner resident = new GraphRunner(model.graph(), w, ops)) {
                    resident.bands(bands);
                    expected = resident.run(in).toArray();
                }
                for (int slots = 1; slots <= 3; slots++) {
                    for (int third = 1; third <= 2; third++) {
                        try (CpuOps ops = new CpuOps()) {
                            long total = kernelBytes(model.graph(), w, ops);
                            long budget = Math.max(total * third / 3, slots * CpuWeightSlotsBytes.largest(model.graph()));
                            try (PreparedWeights p = PreparedWeights.streamed(model.graph(), w, ops, budget, slots);
                                 GraphRunner runner = new GraphRunner(model.graph(), p, ops)) {
                                runner.bands(bands);
                                StreamSplit split = p.stream().split();
                                assertTrue(split.streamedCount() > 0, "something is streamed under " + budget + " of " + total + " bytes");
                                assertTrue(split.deviceBytes() <= budget, split.deviceBytes() + " device bytes within " + budget);
                                assertNotNull(runner.recordingRefused());
                                long biasFree = weightsUsed(ops);
                                assertTrue(biasFree <= budget + 2 * 4 * 64 * model.graph().size(),
                                        "ledger holds resident layers and slots (" + biasFree + ") within the budget " + budget + " plus biases");
                                for (int pass = 0; pass < 3; pass++) {
                                    assertArrayEquals(expected, runner.run(in).toArray(),
                                            format + " bands " + bands + " slots " + slots + " budget " + budget + " pass " + pass);
                                }
                                assertTrue(p.stream().loads() >= p.stream().streamedUses() / 2, "streamed layers were copied");
                            }
                            assertEquals(0, weightsUsed(ops), "slots and resident layers given back");
                        }
                    }
                }
            }
        }
    }

    /**
     * A pass that fails half way (every allocation from the N-th on fails, for each N) leaves the
     * stream usable: the next upscale gives the unfailed image, and the ledger ends at zero.
     */
    @Test
    void aPassThatFailsHalfWayLeavesTheStreamUsable() {
        Graph g = GraphRunnerTest.denseGraph();
        Weights w = GraphRunnerTest.randomWeights(g, new Random(5));
        float[] px = Randoms.floats(new Random(6), 40 * 30 * 3, 0.5f);
        dev.headroom.core.image.FloatImage img = new dev.headroom.core.image.FloatImage(40, 30, 3, px, 8);
        float[] expected;
        long requests;
        try (CpuOps ops = new CpuOps(); GraphRunner runner = new GraphRunner(g, w, ops)) {
            long[] count = {0};
            ops.memory().injectFaults((request, attempt) -> {
                count[0] = request;
                return false;
            });
            expected = new TiledUpscaler(runner, 1f).upscale(img, 24, 4, null).data();
            requests = count[0];
        }
        for (long n = 1; n <= requests; n += 3) {
            final long from = n;
            try (CpuOps ops = new CpuOps()) {
                long budget = kernelBytes(g, w, ops) / 2;
                try (GraphRunner runner = GraphRunner.owning(g, PreparedWeights.streamed(g, w, ops, budget, 2), ops)) {
                    assertNotNull(runner.weightStream());
                    ops.memory().injectFaults((request, attempt) -> request >= from);
                    TiledUpscaler up = new TiledUpscaler(runner, 1f);
                    assertThrows(dev.headroom.runtime.memory.DeviceOutOfMemory.class, () -> up.upscale(img, 24, 4, null), "failing from request " + n);
                    ops.memory().injectFaults(dev.headroom.runtime.memory.DeviceMemory.FaultInjector.NONE);
                    assertArrayEquals(expected, up.upscale(img, 24, 4, null).data(), "after failing from request " + n);
                    assertEquals(0L, ops.memory().stats().allocated(), "activations and workspace back to zero");
                }
                assertEquals(0, weightsUsed(ops), "slots and resident layers given back");
            }
        }
    }

    @Test
    void aBudgetThatHoldsEverythingStreamsNothing() {
        var model = SmallModels.build("srvgg", 2);
        try (CpuOps ops = new CpuOps();
             PreparedWeights p = PreparedWeights.streamed(model.graph(), model.weights(), ops, Long.MAX_VALUE, 2);
             GraphRunner runner = new GraphRunner(model.graph(), p, ops)) {
            assertNull(p.stream());
            assertNull(runner.recordingRefused());
        }
    }

    @Test
    void aBudgetTooSmallForTheSlotsIsRefusedWithTheNumbersAndLeaksNothing() {
        var model = SmallModels.build("rrdbnet", 3);
        try (CpuOps ops = new CpuOps()) {
            var e = assertThrows(IllegalArgumentException.class, () -> PreparedWeights.streamed(model.graph(), model.weights(), ops, 1000, 2));
            assertTrue(e.getMessage().contains("prefetch slots"), e.getMessage());
            assertEquals(0, weightsUsed(ops));
        }
    }

    /**
     * An evicted streamed model's host part whose restore fails after its new slots are made (here
     * a weights array too short for the graph) gives the slots back: the ledger is at zero again
     * and, once the host part closes, the staged layers are freed (the slots held a reference).
     */
    @Test
    void aRestoreThatFailsAfterMakingItsSlotsGivesThemBack() {
        var model = SmallModels.build("rrdbnet", 3);
        try (CpuOps ops = new CpuOps()) {
            long budget = kernelBytes(model.graph(), model.weights(), ops) / 2;
            WeightStream.HostPart host;
            try (PreparedWeights p = PreparedWeights.streamed(model.graph(), model.weights(), ops, budget, 2)) {
                assertTrue(p.stream().split().streamedCount() > 0);
                host = p.stream().toHost();
            }
            assertEquals(0, weightsUsed(ops), "nothing on the device while evicted");
            assertThrows(ArrayIndexOutOfBoundsException.class, () -> host.restore(new Ops.ConvWeights[1]));
            assertEquals(0, weightsUsed(ops), "the failed restore's slots given back");
            StagedLayers staging = host.staging();
            host.close();
            assertThrows(IllegalStateException.class, staging::retain, "the staged layers were freed with the host part (no slot kept a reference)");
            try (PreparedWeights again = PreparedWeights.streamed(model.graph(), model.weights(), ops, budget, 2)) {
                WeightStream.HostPart h2 = again.stream().toHost();
                Ops.ConvWeights[] conv = new Ops.ConvWeights[model.graph().size()];
                try (WeightStream restored = h2.restore(conv)) {
                    assertTrue(weightsUsed(ops) > 0, "a good restore charges its slots");
                } finally {
                    h2.close();
                }
            }
            assertEquals(0, weightsUsed(ops));
        }
    }

    /** Slots whose staging fails when asked to (a pinned allocation), and whose close fails too (a CUDA context's sticky error). */
    private static final class FailingSlots implements IdleSlots {
        final boolean failStage;
        int closes;

        FailingSlots(boolean failStage) {
            this.failStage = failStage;
        }

        @Override
        public void stage(int layer, Op.Conv2d op, dev.headroom.core.TensorData kernel, float[] bias, float[] slope) {
            if (failStage) throw new IllegalStateException("cuMemHostAlloc for layer " + layer + " failed (injected)");
        }

        @Override
        public void close() {
            closes++;
            throw new IllegalStateException("cuStreamSynchronize failed while freeing the slots (injected)");
        }
    }

    /** A streamed prepare that fails staging, on slots whose close fails too, throws the staging's failure with the close's on it. */
    @Test
    void aFailedPrepareWhoseSlotsFailToCloseThrowsTheFirstFailureCarryingTheSecond() {
        var model = SmallModels.build("rrdbnet", 3);
        try (CpuOps ops = new CpuOps()) {
            WeightStream.Target cpu = WeightStream.Target.of(ops);
            FailingSlots slots = new FailingSlots(true);
            WeightStream.Target target = new WeightStream.Target() {
                public long kernelBytes(Op.Conv2d op, dev.headroom.core.TensorData kernel) { return cpu.kernelBytes(op, kernel); }
                public StreamSplit.Cost cost() { return cpu.cost(); }
                public int tile() { return cpu.tile(); }
                public WeightSlots slots(int count, long slotBytes) { return slots; }
                public Ops.ConvWeights prepareConv(Op.Conv2d op, dev.headroom.core.TensorData k, float[] b, float[] s) { return cpu.prepareConv(op, k, b, s); }
            };
            long budget = kernelBytes(model.graph(), model.weights(), ops) / 2;
            var e = assertThrows(IllegalStateException.class, () -> WeightStream.prepare(model.graph(), model.weights(), target, budget, 2));
            assertTrue(e.getMessage().startsWith("cuMemHostAlloc for layer"), "the staging's failure, not the close's: " + e.getMessage());
            assertEquals(1, e.getSuppressed().length, "the close's failure rides on it");
            assertTrue(e.getSuppressed()[0].getMessage().startsWith("cuStreamSynchronize"), e.getSuppressed()[0].getMessage());
            assertEquals(1, slots.closes, "the slots were closed");
        }
    }

    /** A restore that fails after making its slots, whose close fails too, throws the restore's failure with the close's on it. */
    @Test
    void aFailedRestoreWhoseSlotsFailToCloseThrowsTheFirstFailureCarryingTheSecond() {
        var model = SmallModels.build("rrdbnet", 3);
        FailingSlots slots = new FailingSlots(false);
        StagedLayers staging = new StagedLayers() {
            @Override
            public long bytes() {
                return 1;
            }

            @Override
            public WeightSlots slots(int count, long slotBytes) {
                return slots;
            }

            @Override
            protected void free() {}
        };
        try (CpuOps ops = new CpuOps()) {
            long budget = kernelBytes(model.graph(), model.weights(), ops) / 2;
            try (PreparedWeights p = PreparedWeights.streamed(model.graph(), model.weights(), ops, budget, 2);
                 WeightStream.HostPart real = p.stream().toHost()) {
                var host = new WeightStream.HostPart(real.graph(), real.streamed(), real.split(), staging);
                var e = assertThrows(ArrayIndexOutOfBoundsException.class, () -> host.restore(new Ops.ConvWeights[1]));
                assertEquals(1, e.getSuppressed().length, "the close's failure rides on the restore's: " + e);
                assertTrue(e.getSuppressed()[0].getMessage().startsWith("cuStreamSynchronize"), e.getSuppressed()[0].getMessage());
                assertEquals(1, slots.closes);
            }
        }
    }

    /** The largest layer's slot size on the CPU. */
    private static final class CpuWeightSlotsBytes {
        static long largest(Graph g) {
            long m = 0;
            for (Node n : g.nodes()) if (n.op() instanceof Op.Conv2d c) m = Math.max(m, dev.headroom.runtime.cpu.CpuMemoryModel.INSTANCE.weightBytes(c));
            return m;
        }
    }
}
