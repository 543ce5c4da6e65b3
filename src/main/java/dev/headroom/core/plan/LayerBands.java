package dev.headroom.core.plan;

import dev.headroom.core.graph.Graph;
import dev.headroom.core.graph.Node;
import dev.headroom.core.graph.Op;
import dev.headroom.core.graph.Padding;

/**
 * The arithmetic of an exact layer-by-layer tiled run (runtime's {@code LayerTiledRunner}): which
 * nodes are computed on demand rather than stored, how many rows each node's band has, what one
 * step holds on the device, and the largest band height that fits a budget.
 *
 * <p>A step computes one band of one stored node: the rows its op needs of each input (with the
 * border a convolution reads), each input either uploaded or, for a node computed on demand,
 * computed from its own input's rows; and the band's output. Attention takes whole tensors. The peak is the largest step, counted as if every temporary of the step were
 * live at once (an upper bound), with the backend's transient scratch of the step's op (the CPU's
 * padded convolution input, attention's chunk of scores) and the largest workspace the backend keeps
 * ({@link DeviceModel#persistent}: cuDNN's), as {@link DeviceModel} states them.
 */
public final class LayerBands {
    private LayerBands() {}

    /** Band heights below this cost more in borders than they save. */
    public static final int MIN_ROWS = 8;

    /** Whether a tiled run computes node {@code id} on demand from its input's rows instead of storing it. */
    public static boolean lazy(Graph g, int id) {
        Op op = g.node(id).op();
        return id != 0 && id != g.output()
                && (op instanceof Op.GroupNorm || op instanceof Op.UpsampleNearest || op instanceof Op.Activation || op instanceof Op.Scale);
    }

    /** Whether node {@code id} runs on whole tensors in a tiled run. */
    public static boolean whole(Op op) {
        return op instanceof Op.Attention || op instanceof Op.Concat || op instanceof Op.PixelShuffle
                || op instanceof Op.PixelUnshuffle || op instanceof Op.Conv2d c && c.padding() != Padding.SAME;
    }

    /**
     * The input rows [lo, hi) a strided convolution reads for its output rows [a, b) of an input of
     * {@code inH} rows, and the zero rows (top, bottom) it needs around them there: the op's own
     * padding only where the band meets the image's edge.
     */
    public static int[] stridedRows(Op.StridedConv sc, int a, int b, int inH) {
        int from = a * sc.stride() - sc.padTop(), to = (b - 1) * sc.stride() - sc.padTop() + sc.k();
        int lo = Math.max(0, from), hi = Math.min(inH, to);
        return new int[] {lo, hi, lo - from, to - hi};
    }

    /** Rows of a band of a node of height {@code h}, for bands of {@code outRows} rows of an output of height {@code outH}. */
    public static int rows(int outRows, int h, int outH) {
        long r = ((long) outRows * h + outH - 1) / outH;
        return (int) Math.max(1, Math.min(h, r));
    }

    /**
     * Device bytes of the largest step of a tiled run of an (h, w) input in bands of
     * {@code outRows} output rows on a backend that allocates as {@code model} says, weights excluded.
     */
    public static long peak(Graph g, int h, int w, int outRows, DeviceModel model) {
        int[] hs = g.heights(h), ws = g.widths(w);
        int outH = hs[g.output()], e = model.elementBytes();
        long worst = 0, kept = 0;
        for (Node n : g.nodes()) {
            int v = n.id();
            if (v == 0 || lazy(g, v)) continue;
            int r = whole(n.op()) ? hs[v] : rows(outRows, hs[v], outH);
            int rin = r;
            if (!whole(n.op()) && n.op() instanceof Op.Conv2d c) r = rin = Math.min(hs[v], r + c.kh() - 1);
            if (!whole(n.op()) && n.op() instanceof Op.StridedConv sc) rin = Math.min(hs[n.input(0)], (r - 1) * sc.stride() + sc.k());
            if (whole(n.op())) rin = hs[n.input(0)];
            long step = bytes(g, v, r, ws, e);   // the band (its copy off the device goes straight to host memory)
            for (int u : n.inputs()) step += chain(g, u, whole(n.op()) ? hs[u] : rin, hs, ws, e);
            int[] in = {1, rin, ws[n.input(0)], g.channels(n.input(0))}, out = {1, r, ws[v], g.channels(v)};
            step += model.scratch(n, in, out, true, true);
            kept = Math.max(kept, model.persistent(n, in, out));
            worst = Math.max(worst, step);
        }
        return worst + kept;
    }

    /** Bytes of {@code rows} rows of node u, and of what computing them on demand takes. */
    private static long chain(Graph g, int u, int rows, int[] hs, int[] ws, int e) {
        long b = bytes(g, u, rows, ws, e);
        if (!lazy(g, u)) return b;
        int src = g.node(u).input(0);
        int srcRows = g.node(u).op() instanceof Op.UpsampleNearest up ? Math.min(hs[src], (rows + up.factor() - 1) / up.factor() + 1) : rows;
        return b + chain(g, src, srcRows, hs, ws, e);
    }

    private static long bytes(Graph g, int id, int rows, int[] ws, int e) {
        return DeviceModel.align((long) rows * ws[id] * g.channels(id) * e);
    }

    /**
     * The largest band height, halving from the whole output height down to {@link #MIN_ROWS},
     * whose peak plus {@code weights} fits {@code usable}; 0 when none does.
     */
    public static int fit(Graph g, int h, int w, DeviceModel model, long weights, long usable) {
        int outH = g.heights(h)[g.output()];
        for (int r = outH; ; r = (r + 1) / 2) {
            if (weights + peak(g, h, w, r, model) <= usable) return r;
            if (r <= MIN_ROWS) return 0;
        }
    }
}
