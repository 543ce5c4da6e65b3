package dev.headroom.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.MapWeights;
import dev.headroom.core.TensorData;
import dev.headroom.core.Weights;
import dev.headroom.core.graph.Act;
import dev.headroom.core.graph.ChannelOrder;
import dev.headroom.core.graph.ConcatPlan;
import dev.headroom.core.graph.Graph;
import dev.headroom.core.graph.GraphBuilder;
import dev.headroom.core.graph.Node;
import dev.headroom.core.graph.Op;
import dev.headroom.testing.Randoms;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class GraphRunnerTest {
    private final Random rnd = new Random(Randoms.seed());

    /**
     * Two dense blocks with residuals, the second also inside an outer residual from the first
     * conv (as RRDB's last block), a concat that reads the input, shuffle and upsample; fused.
     */
    static Graph denseGraph() {
        return denseGraph(true);
    }

    static Graph denseGraph(boolean fused) {
        GraphBuilder g = new GraphBuilder(3);
        int x = g.conv("first", g.input(), 3, 8, Act.NONE), first = x;
        for (int b = 0; b < 2; b++) {
            int in = x, cat = x;
            for (int i = 0; i < 3; i++) {
                int f = g.conv("b" + b + ".c" + i, cat, 3, 4, Act.NONE);
                f = g.act("b" + b + ".relu" + i, f, Act.leakyRelu(0.2f));
                cat = g.concat("b" + b + ".cat" + i, cat, f);
            }
            int fuse = g.conv("b" + b + ".fuse", cat, 1, 8, Act.NONE);
            x = g.add("b" + b + ".res", g.scale("b" + b + ".beta", fuse, 0.2f), in);
        }
        x = g.add("outer.res", g.scale("outer.beta", x, 0.5f), first);
        int withInput = g.concat("with_input", x, g.input());
        int y = g.conv("pre", withInput, 3, 12, Act.RELU);
        y = g.pixelShuffle("shuffle", y, 2, ChannelOrder.TORCH);
        int base = g.upsample("base", g.input(), 2);
        int out = g.add("out", y, base);
        return fused ? g.build(out) : g.buildUnfused(out);
    }

    static Weights randomWeights(Graph g, Random rnd) {
        Map<String, TensorData> w = new LinkedHashMap<>();
        for (Node n : g.nodes()) {
            if (n.op() instanceof Op.Conv2d c) {
                w.put(c.weight(), new TensorData(c.weight(), new int[] {c.kh(), c.kw(), c.cin(), c.cout()},
                        Randoms.floats(rnd, c.kh() * c.kw() * c.cin() * c.cout(), 0.3f)));
                w.put(c.bias(), new TensorData(c.bias(), new int[] {c.cout()}, Randoms.floats(rnd, c.cout(), 0.1f)));
            }
        }
        return new MapWeights(w, "random");
    }

    /** Evaluates node by node into fresh dense tensors, concatenating by copy: no placement at all. */
    static Tensor naive(Graph g, Weights w, Tensor in) {
        Ops ops = new ReferenceOps();
        Tensor[] v = new Tensor[g.size()];
        int[] hs = g.heights(in.h), ws = g.widths(in.w);
        v[0] = in;
        for (Node n : g.nodes()) {
            if (n.id() == 0) continue;
            Tensor out = Tensor.allocate(in.n, hs[n.id()], ws[n.id()], g.channels(n.id()));
            Tensor x = v[n.input(0)];
            switch (n.op()) {
                case Op.Conv2d c -> ops.conv2d(x, ops.prepareConv(c, w.get(c.weight()).data(), w.get(c.bias()).data(), null), out);
                case Op.Activation a -> ops.activation(x, a.act(), null, out);
                case Op.Add a -> {
                    Tensor[] ins = new Tensor[n.arity()];
                    for (int i = 0; i < ins.length; i++) ins[i] = v[n.input(i)];
                    ops.add(ins, out);
                }
                case Op.Scale s -> ops.scale(x, s.factor(), out);
                case Op.UpsampleNearest u -> ops.upsampleNearest(x, u.factor(), out);
                case Op.PixelShuffle p -> ops.pixelShuffle(x, p.factor(), p.order(), out);
                case Op.PixelUnshuffle p -> ops.pixelUnshuffle(x, p.factor(), p.order(), out);
                case Op.Concat c -> {
                    int off = 0;
                    for (int src : n.inputs()) {
                        ops.copy(v[src], out.slice(off, v[src].c));
                        off += v[src].c;
                    }
                }
                case Op.GroupNorm gn -> ops.groupNorm(x, gn, w.get(gn.weight()).data(), w.get(gn.bias()).data(), out);
                case Op.StridedConv sc -> ops.stridedConv(x, sc, w.get(sc.weight()).data(), w.get(sc.bias()).data(), out);
                case Op.Attention a -> ops.attention(x, v[n.input(1)], v[n.input(2)], a.scale(), out);
                case Op.Input i -> throw new IllegalStateException();
            }
            v[n.id()] = out;
        }
        return v[g.output()];
    }

    @Test
    void fusedPlacedGraphGivesTheSameResultAsThePlainOne() {
        Graph g = denseGraph();
        Weights w = randomWeights(g, rnd);
        Tensor in = Tensor.wrap(Randoms.floats(rnd, 2 * 9 * 7 * 3, 1f), 2, 9, 7, 3);
        GraphRunner runner = new GraphRunner(g, w, new ReferenceOps());
        Tensor placed = runner.run(in);
        // the unfused graph, node by node, concatenating by copy: no fusion and no placement at all
        Tensor copied = naive(denseGraph(false), w, in);
        assertEquals("(2,18,14,3)", placed.shape());
        assertArrayEquals(copied.toArray(), placed.toArray(), "same ops, same order: results must be identical");
        assertTrue(runner.peakBytes() > 0);
    }

    /**
     * A sum of two convolutions that nothing else reads (a VAE resnet whose channels change:
     * conv2(...) + conv_shortcut(x)) fuses one of them into the other's epilogue and keeps both;
     * fusing the second over the first once dropped conv2 from every such resnet.
     */
    @Test
    void aSumOfTwoConvolutionsReadByNothingElseKeepsBoth() {
        for (boolean shortcutFirst : new boolean[] {false, true}) {
            java.util.function.Function<Boolean, Graph> build = fused -> {
                GraphBuilder g = new GraphBuilder(3);
                int h = g.conv("conv1", g.input(), 3, 6, Act.NONE);
                h = g.conv("conv2", h, 3, 6, Act.NONE);
                int s = g.conv("shortcut", g.input(), 1, 6, Act.NONE);
                int out = shortcutFirst ? g.add("sum", s, h) : g.add("sum", h, s);
                return fused ? g.build(out) : g.buildUnfused(out);
            };
            Graph g = build.apply(true);
            assertEquals(3, g.nodes().stream().filter(n -> n.op() instanceof Op.Conv2d).count(), "three convolutions, one carrying the sum:\n" + g);
            Weights w = randomWeights(g, rnd);
            Tensor in = Tensor.wrap(Randoms.floats(rnd, 7 * 5 * 3, 1f), 1, 7, 5, 3);
            Tensor fused = new GraphRunner(g, w, new ReferenceOps()).run(in);
            float[] plain = naive(build.apply(false), w, in).toArray(), got = fused.toArray();
            for (int i = 0; i < plain.length; i++) assertEquals(plain[i], got[i], 1e-5f * (1 + Math.abs(plain[i])), "element " + i);
        }
    }

    @Test
    void denseBlocksShareOneBuffer() {
        Graph g = denseGraph();
        ConcatPlan p = ConcatPlan.of(g);
        // every feature map of block 0 lives in the buffer of its last concatenation
        int root = -1;
        for (Node n : g.nodes()) {
            if (n.name().equals("b0.cat2")) root = n.id();
        }
        int placedInRoot = 0;
        for (Node n : g.nodes()) {
            if (p.root(n.id()) == root && n.id() != root) placedInRoot++;
        }
        assertEquals(6, placedInRoot, "block input, three feature maps and two inner concatenations");
        // the input image is never placed: the caller owns it
        assertEquals(0, p.root(0));
    }

    @Test
    void activationsAndScaledResidualsAreFusedIntoConvolutions() {
        Graph g = denseGraph();
        assertTrue(g.nodes().stream().noneMatch(n -> n.op() instanceof Op.Activation), g.toString());
        assertTrue(g.nodes().stream().noneMatch(n -> n.op() instanceof Op.Scale), g.toString());
        long residual = g.nodes().stream().filter(n -> n.op() instanceof Op.Conv2d c && c.hasResidual()).count();
        assertEquals(2, residual, "each block's fuse conv carries its 0.2-scaled residual:\n" + g);
        List<Op.Conv2d> outer = g.nodes().stream().map(Node::op).filter(o -> o instanceof Op.Conv2d c && c.hasOuterResidual())
                .map(o -> (Op.Conv2d) o).toList();
        assertEquals(1, outer.size(), "the second block's fuse conv also carries the outer residual:\n" + g);
        assertEquals(0.5f, outer.getFirst().outerScale());
        assertEquals(denseGraph(false).size() - 6 - 3 - 3, g.size(), "6 activations and 3 scales are gone, and 3 convolutions merged into their adds");
    }

    @Test
    void missingOrMisshapenWeightsNameTheLayer() {
        Graph g = denseGraph();
        Map<String, TensorData> w = new LinkedHashMap<>();
        Weights all = randomWeights(g, rnd);
        for (String k : all.names()) if (!k.equals("b1.fuse.weight")) w.put(k, all.get(k));
        var e = assertThrows(IllegalArgumentException.class, () -> new GraphRunner(g, new MapWeights(w, "m"), new ReferenceOps()));
        assertTrue(e.getMessage().contains("b1.fuse"), e.getMessage());
        w.put("b1.fuse.weight", new TensorData("b1.fuse.weight", new int[] {1, 1, 9, 8}, new float[72]));
        e = assertThrows(IllegalArgumentException.class, () -> new GraphRunner(g, new MapWeights(w, "m"), new ReferenceOps()));
        assertTrue(e.getMessage().contains("[1, 1, 9, 8]"), e.getMessage());
    }
}
