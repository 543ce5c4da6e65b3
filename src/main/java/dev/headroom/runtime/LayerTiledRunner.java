package dev.headroom.runtime;

import dev.headroom.core.graph.Graph;
import dev.headroom.core.graph.Node;
import dev.headroom.core.graph.Op;
import dev.headroom.core.graph.Padding;
import dev.headroom.core.plan.LayerBands;
import dev.headroom.core.plan.MemoryPlan;
import java.util.ArrayList;
import java.util.List;

/**
 * Runs a graph exactly, in bands of rows, layer by layer: for models whose layers see the whole
 * image (GroupNorm's statistics, attention over every position), where overlapping tiles cannot
 * give the untiled result. The diffusion VAE decoder is the case it was made for.
 *
 * <p>Nodes run in order, each over the whole image before the next starts, band after band; the
 * device holds one band of a node's inputs and output at a time, and each node's whole output
 * is stored until its last reader has run: on the device ({@link DeviceRows}) while the stored
 * outputs there stay within the bytes the caller allows, in order of computation, else off it
 * ({@link Ops#rowStore}: host floats on the CPU, the device's bytes in pinned memory for CUDA). A band of a convolution reads its input's rows with the
 * border its kernel needs (and computes those border rows too, wrongly where they lie inside the
 * image, which is why only the band's own rows are kept). Pointwise nodes (GroupNorm's
 * normalisation, SiLU, scales) and nearest upsampling are never stored: they are computed on the
 * device from their input's rows when a reader needs them. GroupNorm statistics are gathered
 * while the node it normalises is computed, band by band, where the backend keeps them
 * ({@link Ops#normStats}: fp32 per row, double across rows in row order), so they are the whole
 * image's, the same sums in the same order, before any band is normalised.
 * A strided convolution's band reads the input rows its stride and kernel need, with the op's
 * padding only at the image's edges. Attention runs on whole tensors (memory-bounded by its kernel;
 * at a VAE's latent resolution its inputs are small).
 *
 * <p>On the CPU the result equals the whole-tensor run bit for bit: every output pixel is computed
 * by the same arithmetic, and the statistics are the same sums in the same order.
 */
public final class LayerTiledRunner {
    private final GraphRunner prepared;
    private final Graph g;
    private final Ops ops;

    /** @param prepared the graph with its weights prepared on the backend that will run it */
    public LayerTiledRunner(GraphRunner prepared) {
        this.prepared = prepared;
        this.g = prepared.graph();
        this.ops = prepared.ops();
    }

    /** Whether a node is computed on demand from its input's rows instead of stored ({@link LayerBands#lazy}). */
    private boolean lazy(int id) {
        return LayerBands.lazy(g, id);
    }

    /**
     * in is a host (1, H, W, C) tensor; {@code outRows} is the band height at the output's
     * resolution (nodes at lower resolutions take proportionally fewer rows). Returns the host
     * output. Every intermediate is stored off the device.
     */
    public Tensor run(Tensor in, int outRows) {
        return run(in, outRows, 0);
    }

    /**
     * As {@link #run(Tensor, int)}, keeping intermediates on the device while those kept there
     * hold at most {@code deviceBytes} (first come, first kept; the rest go off the device).
     */
    public Tensor run(Tensor in, int outRows, long deviceBytes) {
        if (in.n != 1) throw new IllegalArgumentException("a tiled run takes one image at a time, not " + in.n);
        if (in.c != g.inputChannels()) throw new IllegalArgumentException("model takes " + g.inputChannels() + " channels, input has " + in.c);
        onDevice = offDevice = 0;
        return new Pass(in, Math.max(1, outRows), Math.max(0, deviceBytes)).run();
    }

    private long onDevice, offDevice;

    /** Bytes of intermediates the last run stored on the device, and off it. */
    public long[] storedBytes() {
        return new long[] {onDevice, offDevice};
    }

    /** The state of one run: stored outputs, statistics, band heights. */
    private final class Pass {
        final int size = g.size();
        final int[] hs, ws;
        final RowStore[] stored = new RowStore[size];
        final long[] resident = new long[size];          // device bytes of a node stored on the device
        final Ops.NormStats[] stats = new Ops.NormStats[size];   // GroupNorm node -> its statistics
        final boolean[] gathered = new boolean[size];    // stats filled while the input was computed
        final int[] lastUse;
        final int outRows;
        final long deviceBytes;
        long residentNow;

        Pass(Tensor in, int outRows, long deviceBytes) {
            hs = g.heights(in.h);
            ws = g.widths(in.w);
            this.outRows = outRows;
            this.deviceBytes = deviceBytes;
            this.in = in;
            lastUse = lastUses();
        }

        final Tensor in;

        /** The input, stored as any node's output is. */
        void storeInput() {
            store(0);
            Tensor up = ops.upload(in);
            try {
                stored[0].put(0, up);
            } finally {
                if (up != in) ops.release(up);
            }
        }

        /** Where node v's output is kept: on the device while within the allowance, else off it. */
        void store(int v) {
            long bytes = DeviceRows.bytes(ops, hs[v], ws[v], g.channels(v));
            if (residentNow + bytes <= deviceBytes && (long) hs[v] * ws[v] * g.channels(v) < Integer.MAX_VALUE) {
                stored[v] = new DeviceRows(ops, hs[v], ws[v], g.channels(v));
                resident[v] = bytes;
                residentNow += bytes;
                onDevice += bytes;
            } else {
                stored[v] = ops.rowStore(ws[v], g.channels(v));
                offDevice += bytes;
            }
        }

        /**
         * The scratch the whole run's plan gives attention node v in its arena ({@link MemoryPlan#SCRATCH}),
         * allocated where the device allowance has room for it beside the intermediates kept there, so
         * attention takes the same chunks as the whole run and gives the same bits; else null (the
         * backend's own memory, counted in {@link LayerBands#peak}: smaller chunks, other bits).
         */
        DeviceBuffer attentionScratch(int v) {
            MemoryPlan.Buffer s = prepared.plan(1, hs[0], ws[0]).scratchOf(v);
            if (s == null || residentNow + s.bytes() > deviceBytes) return null;
            var memory = ops.memory();
            try (var scope = memory == null ? null : memory.tag("workspace", "attention")) {
                return ops.allocateArena(s.bytes());
            }
        }

        void free(int u) {
            stored[u].close();
            stored[u] = null;
            residentNow -= resident[u];
            resident[u] = 0;
        }

        Ops.NormStats stats(int norm) {
            if (stats[norm] == null) stats[norm] = ops.normStats((Op.GroupNorm) g.node(norm).op(), 1);
            return stats[norm];
        }

        /** The last stored node that reads each node, directly or through lazy nodes. */
        int[] lastUses() {
            int[] last = new int[size];
            for (int v = size - 1; v > 0; v--) {
                int reader = lazy(v) ? last[v] : v;
                for (int u : g.node(v).inputs()) last[u] = Math.max(last[u], reader);
            }
            last[g.output()] = size;
            return last;
        }

        int bandRows(int id) {
            return LayerBands.rows(outRows, hs[id], hs[g.output()]);
        }

        Tensor run() {
            try {
                storeInput();
                for (int v = 1; v < size; v++) {
                    if (lazy(v)) continue;
                    compute(v);
                    for (int u = 0; u < v; u++) if (stored[u] != null && lastUse[u] <= v) free(u);
                }
                Tensor out = stored[g.output()].read(0, hs[g.output()]);
                try {
                    return ops.download(out);
                } finally {
                    release(out);
                }
            } finally {
                for (RowStore s : stored) if (s != null) s.close();
                for (Ops.NormStats s : stats) if (s != null) s.close();
            }
        }

        /** Computes node v band by band into host memory, gathering the statistics its GroupNorm readers need. */
        void compute(int v) {
            int h = hs[v], step = LayerBands.whole(g.node(v).op()) ? h : bandRows(v);
            store(v);
            List<Integer> norms = new ArrayList<>();
            for (int r : g.consumers().get(v)) if (g.node(r).op() instanceof Op.GroupNorm) norms.add(r);
            for (int a = 0; a < h; a += step) {
                int b = Math.min(h, a + step);
                Band out = band(v, a, b);
                try {
                    Tensor own = out.t.rows(a - out.from, b - out.from);
                    for (int n : norms) stats(n).add(own);
                    stored[v].put(a, own);
                } finally {
                    ops.release(out.t);
                }
            }
            for (int n : norms) gathered[n] = true;
        }

        /** A device tensor holding rows [from, from + t.h) of a node; owned by the caller. */
        record Band(Tensor t, int from) {}

        /** Rows [a, b) of stored node v, computed (with whatever extra rows its op needs around them). */
        Band band(int v, int a, int b) {
            Node node = g.node(v);
            Op op = node.op();
            int h = hs[v];
            switch (op) {
                case Op.Conv2d c when c.padding() == Padding.SAME -> {
                    int pt = (c.kh() - 1) / 2, pb = c.kh() - 1 - pt;
                    int lo = Math.max(0, a - pt), hi = Math.min(h, b + pb);
                    // A band at the image's edge reads as many rows as one inside it (sliding inward; rows beyond
                    // its own are discarded), so all bands of a node are one convolution shape: on CUDA each new
                    // shape costs a plan and, once it repeats, a timing (a cold 1024x1024 decode in 256-row bands
                    // met 33 shapes where whole it meets 19, and took 15.8 s against 4.9 s on the H200). A last
                    // band of less than half a band keeps its own height rather than recompute most of one.
                    int step = bandRows(v), span = Math.min(h, step + c.kh() - 1);
                    if (2 * (b - a) >= step) {
                        lo = Math.max(0, Math.min(a - pt, h - span));
                        hi = Math.min(h, lo + span);
                    }
                    Tensor x = rows(node.input(0), lo, hi);
                    Tensor r = c.hasResidual() ? rows(node.input(1), lo, hi) : null;
                    Tensor r2 = c.hasOuterResidual() ? rows(node.input(2), lo, hi) : null;
                    Tensor out = ops.allocate(1, hi - lo, ws[v], c.cout());
                    try {
                        ops.conv2d(x, prepared.convWeights(v), r, r2, out);
                    } finally {
                        release(x, r, r2);
                    }
                    return new Band(out, lo);
                }
                case Op.Add add -> {
                    Tensor[] ins = new Tensor[node.arity()];
                    try {
                        for (int j = 0; j < ins.length; j++) ins[j] = rows(node.input(j), a, b);
                        Tensor out = ops.allocate(1, b - a, ws[v], g.channels(v));
                        ops.add(ins, out);
                        return new Band(out, a);
                    } finally {
                        release(ins);
                    }
                }
                case Op.Attention att -> {
                    Tensor q = rows(node.input(0), 0, hs[node.input(0)]), k = rows(node.input(1), 0, hs[node.input(1)]),
                            val = rows(node.input(2), 0, hs[node.input(2)]);
                    DeviceBuffer scratch = attentionScratch(v);
                    try {
                        Tensor out = ops.allocate(1, h, ws[v], g.channels(v));
                        if (scratch != null) ops.attention(q, k, val, att.scale(), out, scratch);
                        else ops.attention(q, k, val, att.scale(), out);
                        return new Band(out, 0);
                    } finally {
                        if (scratch != null) ops.releaseArena(scratch);
                        release(q, k, val);
                    }
                }
                case Op.StridedConv sc -> {
                    int[] span = LayerBands.stridedRows(sc, a, b, hs[node.input(0)]);
                    Tensor x = rows(node.input(0), span[0], span[1]);
                    try {
                        // the op's top and bottom padding only where this band meets the image's edge
                        Op.StridedConv local = new Op.StridedConv(sc.weight(), sc.bias(), sc.k(), sc.cin(), sc.cout(), sc.stride(), span[2], span[3],
                                sc.padLeft(), sc.padRight());
                        Tensor out = ops.allocate(1, b - a, ws[v], sc.cout());
                        float[][] p = prepared.params(v);
                        ops.stridedConv(x, local, p[0], p[1], out);
                        return new Band(out, a);
                    } finally {
                        release(x);
                    }
                }
                case Op.GroupNorm gn -> {
                    return new Band(onDemand(v, a, b), a);   // the output node: computed as other nodes of its kind are
                }
                case Op.UpsampleNearest u -> {
                    return new Band(onDemand(v, a, b), a);
                }
                case Op.Activation act -> {
                    return new Band(onDemand(v, a, b), a);
                }
                case Op.Scale s -> {
                    return new Band(onDemand(v, a, b), a);
                }
                default -> throw new UnsupportedOperationException("a layer-tiled run cannot run " + op.kind() + " (node " + node.name() + ")");
            }
        }

        /** Rows [lo, hi) of node u as a device tensor the caller releases: uploaded if stored, computed if lazy. */
        Tensor rows(int u, int lo, int hi) {
            return stored[u] != null ? stored[u].read(lo, hi) : onDemand(u, lo, hi);
        }

        /** Rows [lo, hi) of a pointwise node or upsample, computed from its input's rows. */
        Tensor onDemand(int u, int lo, int hi) {
            Node node = g.node(u);
            switch (node.op()) {
                case Op.GroupNorm gn -> {
                    int src = node.input(0);
                    if (!gathered[u]) gather(u, src);
                    Tensor x = rows(src, lo, hi);
                    try {
                        Tensor out = ops.allocate(1, hi - lo, ws[u], g.channels(u));
                        float[][] p = prepared.params(u);
                        stats[u].apply(x, p[0], p[1], out);
                        return out;
                    } finally {
                        release(x);
                    }
                }
                case Op.UpsampleNearest up -> {
                    int f = up.factor(), slo = lo / f, shi = (hi + f - 1) / f;
                    Tensor x = rows(node.input(0), slo, shi);
                    Tensor big = ops.allocate(1, (shi - slo) * f, ws[u], g.channels(u));
                    try {
                        ops.upsampleNearest(x, f, big);
                    } finally {
                        release(x);
                    }
                    if (slo * f == lo && shi * f == hi) return big;
                    Tensor out = ops.allocate(1, hi - lo, ws[u], g.channels(u));
                    ops.copy(big.rows(lo - slo * f, hi - slo * f), out);
                    ops.release(big);
                    return out;
                }
                case Op.Activation act -> {
                    Tensor x = rows(node.input(0), lo, hi);
                    try {
                        Tensor out = ops.allocate(1, hi - lo, ws[u], g.channels(u));
                        ops.activation(x, act.act(), prepared.slope(u), out);
                        return out;
                    } finally {
                        release(x);
                    }
                }
                case Op.Scale s -> {
                    Tensor x = rows(node.input(0), lo, hi);
                    try {
                        Tensor out = ops.allocate(1, hi - lo, ws[u], g.channels(u));
                        ops.scale(x, s.factor(), out);
                        return out;
                    } finally {
                        release(x);
                    }
                }
                default -> throw new IllegalStateException("node " + node.name() + " (" + node.op().kind() + ") is not computed on demand");
            }
        }

        /** Statistics of a GroupNorm whose input was not stored with them (the graph's input, or a lazy node): one pass over its bands. */
        void gather(int norm, int src) {
            int step = bandRows(src);
            for (int a = 0; a < hs[src]; a += step) {
                Tensor x = rows(src, a, Math.min(hs[src], a + step));
                try {
                    stats(norm).add(x);
                } finally {
                    release(x);
                }
            }
            gathered[norm] = true;
        }

        void release(Tensor... ts) {
            // host views of stored rows, and views of a stored arena, own nothing
            for (Tensor t : ts) if (t != null && t.device != null && !(t.device instanceof ArenaView)) ops.release(t);
        }
    }
}
