package dev.headroom.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.Precision;
import dev.headroom.core.graph.Act;
import dev.headroom.core.graph.ChannelOrder;
import dev.headroom.core.graph.Graph;
import dev.headroom.core.graph.GraphBuilder;
import dev.headroom.core.graph.Op;
import dev.headroom.core.plan.MemoryPlan;
import dev.headroom.core.plan.Planner;
import dev.headroom.models.SyntheticModels;
import dev.headroom.runtime.cpu.CpuMemoryModel;
import dev.headroom.runtime.cpu.CpuOps;
import dev.headroom.runtime.gpu.CudaMemoryModel;
import dev.headroom.testing.Randoms;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Running a graph's high-resolution tail in row bands: same values, less memory. */
class BandsTest {

    /**
     * A trunk that ends in a dense block (so the tail cannot reach back to the input), then a
     * random tail of upsamples, pixel shuffles, convolutions of kernel 1 to 5 (even ones pad more
     * below), fused scaled residuals and activations, a last convolution, and a skip from the
     * upsampled input image, as SRVGG adds.
     */
    static Graph tailGraph(Random r) {
        GraphBuilder g = new GraphBuilder(3);
        int f = 4 + r.nextInt(6);
        int x = g.conv("first", g.input(), 3, f, Act.NONE);
        int cat = g.concat("cat", x, g.conv("dense", x, 3, 4, Act.RELU));
        x = g.conv("fuse", cat, 1, f, Act.NONE);
        int scale = 1;
        for (int i = 0, n = 2 + r.nextInt(5); i < n || scale == 1; i++) {
            switch (r.nextInt(scale < 4 ? 5 : 3)) {
                case 0 -> x = g.conv("c" + i, x, 1 + r.nextInt(5), f, Act.leakyRelu(0.2f));
                case 1 -> x = g.add("res" + i, g.scale("s" + i, g.conv("rc" + i, x, 3, f, Act.NONE), 0.2f), x);
                case 2 -> x = g.act("a" + i, x, Act.RELU);
                case 3 -> {
                    x = g.upsample("up" + i, x, 2);
                    scale *= 2;
                }
                default -> {
                    x = g.pixelShuffle("ps" + i, g.conv("pre" + i, x, 3, f * 4, Act.NONE), 2, ChannelOrder.TORCH);
                    scale *= 2;
                }
            }
        }
        int last = g.conv("last", x, 3, 3, Act.NONE);
        return g.build(g.add("out", last, g.upsample("base", g.input(), scale)));
    }

    @Test
    void everyBandingGivesBitIdenticalOutputAndThePlannedPeak() {
        Random r = new Random(Randoms.seed());
        int banded = 0;
        for (int trial = 0; trial < 12; trial++) {
            Graph g = tailGraph(r);
            int h = 10 + r.nextInt(20), w = 6 + r.nextInt(20);
            Tensor in = Tensor.wrap(Randoms.floats(r, h * w * 3, 1f), 1, h, w, 3);
            var weights = GraphRunnerTest.randomWeights(g, r);
            List<MemoryPlan> plans = Planner.alternatives(g, 1, h, w, CpuMemoryModel.INSTANCE);
            assertNull(plans.getFirst().bands(), "the first alternative runs on whole tensors");
            float[] whole = null;
            for (MemoryPlan p : plans) {
                try (CpuOps ops = new CpuOps(); GraphRunner runner = new GraphRunner(g, weights, ops)) {
                    runner.usePlan(1, h, w, p);
                    float[] out = runner.run(in).toArray();
                    if (whole == null) whole = out;
                    else assertArrayEquals(whole, out, p.bands() + " of " + w + "x" + h + " must change no value:\n" + g);
                    assertEquals(p.peak() - p.weights(), ops.memory().stats().allocatedPeak(), "planned against measured peak, " + p.bands());
                    assertEquals(0, ops.memory().stats().allocated(), "all given back");
                    PlanTest.assertNoOverlap(p);
                }
                if (p.bands() != null) banded++;
            }
        }
        assertTrue(banded >= 12, "only " + banded + " banded plans were tried");
    }

    @Test
    void theReferenceOpsAgreeInBands() {
        Random r = new Random(Randoms.seed());
        Graph g = tailGraph(r);
        var weights = GraphRunnerTest.randomWeights(g, r);
        Tensor in = Tensor.wrap(Randoms.floats(r, 17 * 11 * 3, 1f), 1, 17, 11, 3);
        GraphRunner runner = new GraphRunner(g, weights, new ReferenceOps());
        float[] whole = null;
        for (MemoryPlan p : Planner.alternatives(g, 1, 17, 11, CpuMemoryModel.INSTANCE)) {
            runner.usePlan(1, 17, 11, p);
            float[] out = runner.run(in).toArray();
            if (whole == null) whole = out;
            else assertArrayEquals(whole, out, String.valueOf(p.bands()));
        }
    }

    /** RRDBNet x4 at a 256 tile in fp16: the tail's 1024x1024x64 maps set the whole-tensor arena; in bands the trunk does. */
    @Test
    void rrdbnetsTailIsBandedAndItsArenaFallsToTheTrunks() {
        Graph g = SyntheticModels.build("rrdbnet-x4", 1).graph();
        var model = new CudaMemoryModel(Precision.F16);
        MemoryPlan whole = Planner.plan(g, 1, 256, 256, model, false);
        MemoryPlan banded = Planner.plan(g, 1, 256, 256, model);
        assertNotNull(banded.bands());
        assertTrue(g.node(banded.bands().start).op() instanceof Op.UpsampleNearest || g.node(banded.bands().start + 1).op() instanceof Op.UpsampleNearest,
                "the tail starts at the first upsample or the node feeding it: " + g.node(banded.bands().start));
        long trunkBuffer = 256L * 256 * (64 + 4 * 32) * 2;     // one dense block's concatenation buffer
        assertTrue(whole.arenaBytes() >= 256L << 20, "whole tensors: conv_hr reads a 1024x1024x64 map while writing one");
        assertTrue(banded.arenaBytes() <= 4 * trunkBuffer, "banded arena " + banded.arenaBytes() + " should be at most four dense-block buffers");
        assertTrue(banded.peak() < whole.peak());
        System.out.printf("RRDBNet x4 fp16, 256 tile: arena %.1f MiB whole, %.1f MiB in %s; peak %.1f -> %.1f MiB%n", whole.arenaBytes() / 1048576.0,
                banded.arenaBytes() / 1048576.0, banded.bands(), whole.peak() / 1048576.0, banded.peak() / 1048576.0);
    }

    @Test
    void batchesAreNotBanded() {
        Graph g = tailGraph(new Random(3));
        assertNull(Planner.plan(g, 2, 24, 24, CpuMemoryModel.INSTANCE).bands());
    }
}
