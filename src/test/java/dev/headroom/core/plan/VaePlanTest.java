package dev.headroom.core.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.Precision;
import dev.headroom.core.graph.ConcatPlan;
import dev.headroom.core.graph.Graph;
import dev.headroom.core.graph.Node;
import dev.headroom.core.graph.Op;
import dev.headroom.models.arch.VaeArchitecture;
import dev.headroom.runtime.gpu.CudaMemoryModel;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The memory plan of a full-size SDXL-shaped VAE decoder (no weights needed: plans are arithmetic). */
class VaePlanTest {
    private static final Graph SDXL = VaeArchitecture.decoder(new VaeArchitecture.Config(new int[] {128, 256, 512, 512}, 2, 4, true, true, false, true));

    @Test
    void sdxlDecodeAt1024RunsInOneGibOfArenaAndTheWorkspaceHoldsAttention() {
        MemoryPlan p = Planner.plan(SDXL, 1, 128, 128, new CudaMemoryModel(Precision.F16));
        // before GroupNorms ran in place after the shortcut: 1.25 GiB (x, norm1(x) and the shortcut of up_blocks.3.resnets.0 at once)
        assertEquals(1L << 30, p.arenaBytes(), "arena");
        assertEquals(p.lowerBound(), p.arenaBytes(), "packed at the lower bound");
        // attention's chunk (256 queries of 16,384 keys) and cuBLAS scratch fit in the convolutions' 64 MiB workspace: nothing kept beside it
        assertTrue(CudaMemoryModel.attentionScratch(128 * 128, 512, Precision.F16) < 64L << 20);
        assertEquals(64L << 20, p.persistent(), "persistent");
        assertTrue(p.peak() < 1_676_113_408L, "peak " + p.peak() + " (it was 1,676,113,408)");
    }

    @Test
    void aGroupNormWritesOverItsInputWhenNothingReadsItLater() {
        ConcatPlan placement = ConcatPlan.of(SDXL);
        List<List<Integer>> readers = SDXL.consumers();
        int inPlace = 0, own = 0;
        for (Node n : SDXL.nodes()) {
            if (!(n.op() instanceof Op.GroupNorm)) continue;
            int x = n.input(0);
            boolean lastReader = readers.get(x).stream().allMatch(r -> r <= n.id());
            if (lastReader) {
                assertEquals(placement.root(x), placement.root(n.id()), n.name() + " in place");
                inPlace++;
            } else {
                assertEquals(n.id(), placement.root(n.id()), n.name() + " has its own buffer: its input is read after it");
                own++;
            }
        }
        // norm2 of the 14 resnets (2 mid, 3 per up level), norm1 of the 2 that change channels (their shortcut runs first) and
        // norm_out; not norm1 of the 12 others (x is their sum's residual) nor attention's (x is its sum's)
        assertEquals(17, inPlace);
        assertEquals(13, own);
    }

    @Test
    void conv2CarriesEachResnetsSumAndTheShortcutStaysAConvolution() {
        int sums = 0, shortcuts = 0;
        for (Node n : SDXL.nodes()) {
            if (n.name().matches(".*resnets\\.\\d+\\.sum")) {
                assertTrue(n.op() instanceof Op.Conv2d c && c.kh() == 3 && c.hasResidual(), n.name() + " is " + n.op());
                sums++;
            }
            if (n.name().endsWith("conv_shortcut")) {
                assertTrue(n.op() instanceof Op.Conv2d c && c.kh() == 1 && !c.hasResidual(), n.name() + " is " + n.op());
                shortcuts++;
            }
        }
        assertEquals(14, sums);
        assertEquals(2, shortcuts);
    }

    /**
     * Attention's chunk lies in the arena where the plan has room at its step: at 1024 the largest
     * offered (4,096 queries of 16,384 keys, 424 MiB with cuBLAS's 32 MiB) at no cost to the peak; at
     * 2048 too (1.54 GiB), and the peak drops by the 36.5 MiB attention's 256-query chunk had grown the
     * kept workspace by.
     */
    @Test
    void attentionTakesItsLargestChunkInTheArenaWithoutRaisingThePeak() {
        DeviceModel model = new CudaMemoryModel(Precision.F16);
        int attention = -1;
        for (Node n : SDXL.nodes()) if (n.op() instanceof Op.Attention) attention = n.id();
        long[] offered = model.arenaScratch(SDXL.node(attention), new int[] {1, 128, 128, 512}, new int[] {1, 128, 128, 512});
        org.junit.jupiter.api.Assumptions.assumeTrue(offered.length > 0, "HEADROOM_VAE_ATTENTION=lent: no scratch in the arena");
        for (int h : new int[] {128, 256}) {
            MemoryPlan p = Planner.plan(SDXL, 1, h, h, model), lent = Planner.plan(SDXL, 1, h, h, lent(model));
            MemoryPlan.Buffer s = p.scratchOf(attention);
            long[] sizes = model.arenaScratch(SDXL.node(attention), new int[] {1, h, h, 512}, new int[] {1, h, h, 512});
            assertTrue(s != null && s.bytes() == sizes[sizes.length - 1], "scratch " + s + " of " + java.util.Arrays.toString(sizes));
            assertEquals(attention, s.first());
            assertEquals(attention, s.last());
            assertEquals(lent.arenaBytes(), p.arenaBytes(), "arena at " + h);
            assertEquals(64L << 20, p.persistent(), "persistent at " + h + ": the convolutions' workspace alone");
            assertTrue(p.peak() <= lent.peak(), h + ": peak " + p.peak() + " against " + lent.peak() + " with the chunk in the workspace");
            assertEquals(null, lent.scratchOf(attention));
        }
        assertEquals(1_239_947_264L, Planner.plan(SDXL, 1, 128, 128, model).peak(), "peak at 1024 as before");
    }

    /** The model without scratch in the arena: attention's chunks in the convolutions' workspace, as before. */
    static DeviceModel lent(DeviceModel base) {
        return new DeviceModel() {
            public int elementBytes() { return base.elementBytes(); }
            public long weightBytes(Op.Conv2d conv) { return base.weightBytes(conv); }
            public long inputBytes(int n, int h, int w, int c) { return base.inputBytes(n, h, w, c); }
            public long scratch(Node node, int[] in, int[] out, boolean inDense, boolean outDense) { return base.scratch(node, in, out, inDense, outDense); }
            public long persistent(Node node, int[] in, int[] out) { return base.persistent(node, in, out); }
        };
    }
}
