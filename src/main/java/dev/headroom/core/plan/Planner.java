package dev.headroom.core.plan;

import dev.headroom.core.graph.ConcatPlan;
import dev.headroom.core.graph.Graph;
import dev.headroom.core.graph.Node;
import dev.headroom.core.graph.Op;
import java.util.ArrayList;
import java.util.List;

/**
 * Plans a graph's memory for one input shape, following the executor's order exactly.
 *
 * <p>Steps: node i runs at step i; when the tail runs in {@link Bands} (from node t, in K bands),
 * nodes before t keep steps 1..t-1 and then band k runs the tail nodes at steps
 * t + k*L .. t + k*L + L-1 (L = tail length). A concatenation root's buffer is alive from the step
 * of the first node that writes into it to the last step that reads any part of it (a part nobody
 * reads dies where it is written); the output's buffer lives to the end. A tail node has one
 * buffer per band, of the band's rows, alive from its step in the band to its last reader's step in
 * the same band; a node before the tail that the tail reads stays whole until the last band reads
 * it. Offsets come from {@link ArenaPacker}.
 *
 * <p>Whether to band, from which node and in how many bands is chosen here: every start
 * {@link Bands#starts} offers and band counts 2, 4, 8, ... are costed by their lower bound plus
 * transient and kept bytes (cheap: no packing), and the fewest bands within {@link #BAND_SLACK}
 * of the cheapest is kept (then the cheapest of those, then the shortest tail), since more bands
 * cost more launches and more halo rows for little memory: on the H100, RRDBNet x4's 256 tile in 8
 * bands ran 8% slower than on whole tensors, in 4 bands at 512 3% slower.
 */
public final class Planner {
    /** A banding within this factor of the least memory found is good enough. */
    static final double BAND_SLACK = 1.10;

    private Planner() {}

    /** The plan with the tail banded where that saves memory. */
    public static MemoryPlan plan(Graph g, int n, int h, int w, DeviceModel model) {
        return plan(g, n, h, w, model, true);
    }

    /** @param allowBands false to plan whole-tensor execution only */
    public static MemoryPlan plan(Graph g, int n, int h, int w, DeviceModel model, boolean allowBands) {
        List<Layout> tried = layouts(g, n, h, w, model, allowBands);
        long least = tried.stream().mapToLong(Layout::cost).min().orElseThrow();
        Layout best = tried.stream().filter(l -> l.cost() <= least * BAND_SLACK)
                .min(java.util.Comparator.comparingInt(Layout::bandCount).thenComparingLong(Layout::cost).thenComparingInt(l -> -l.tailStart()))
                .orElseThrow();
        return pack(g, n, h, w, model, best);
    }

    /** Every way of running the graph {@link #plan} weighs, whole tensors first, each packed: for tests and tools. */
    public static List<MemoryPlan> alternatives(Graph g, int n, int h, int w, DeviceModel model) {
        return layouts(g, n, h, w, model, true).stream().map(l -> pack(g, n, h, w, model, l)).toList();
    }

    private static List<Layout> layouts(Graph g, int n, int h, int w, DeviceModel model, boolean allowBands) {
        int[] hs = g.heights(h), ws = g.widths(w);
        for (Node node : g.nodes()) {
            if (hs[node.id()] < 1 || ws[node.id()] < 1) throw new IllegalArgumentException("input " + w + "x" + h + " is too small for layer '" + node.name() + "'");
        }
        ConcatPlan placement = ConcatPlan.of(g);
        List<Layout> tried = new ArrayList<>(List.of(Layout.of(g, n, hs, ws, placement, model, null)));
        if (allowBands && n == 1) {
            for (int start : Bands.starts(g, hs)) {
                for (int k : Bands.counts(hs[g.output()])) tried.add(Layout.of(g, n, hs, ws, placement, model, Bands.of(g, hs, start, k)));
            }
        }
        return tried;
    }

    /** Samples converted and sent home per band by a device output window: 16 MiB is about 340 rows of a 16384-pixel RGB output. */
    public static final long WINDOW_BAND_BYTES = 16L << 20;

    /**
     * Device bytes of an output window (dev.headroom.runtime.OutputWindow): {@code rows} fp32 output
     * rows of {@code width} pixels and {@code channels} (one tile row of output), and at most
     * {@link #WINDOW_BAND_BYTES} of samples on their way home.
     */
    public static long outputWindowBytes(int width, int rows, int channels) {
        return (long) width * rows * channels * Float.BYTES + WINDOW_BAND_BYTES;
    }

    private static MemoryPlan pack(Graph g, int n, int h, int w, DeviceModel model, Layout best) {
        long[] offsets = ArenaPacker.pack(best.bytes, best.first, best.last);
        long arena = ArenaPacker.arenaBytes(best.bytes, offsets), persistent = best.persistent;
        long[] bytes = best.bytes;
        int[] node = best.node, band = best.band, first = best.first, last = best.last;
        Scratch room = Scratch.of(g, n, h, w, model, best, arena + persistent);
        if (room != null) {
            node = room.node;
            band = room.band;
            bytes = room.bytes;
            first = room.first;
            last = room.last;
            offsets = room.offsets;
            arena = room.arena;
            persistent = best.persistentBesideScratch;
        }
        List<MemoryPlan.Buffer> buffers = new ArrayList<>();
        for (int k = 0; k < bytes.length; k++) {
            buffers.add(new MemoryPlan.Buffer(node[k], band[k], bytes[k], first[k], last[k], offsets[k]));
        }
        long weights = 0;
        for (Node v : g.nodes()) if (v.op() instanceof Op.Conv2d c) weights += model.weightBytes(c);
        long input = model.inputBytes(n, h, w, g.inputChannels());
        return new MemoryPlan(List.copyOf(buffers), arena, best.lowerBound, weights, input, persistent, best.scratch, best.bands, 0);
    }

    /**
     * The layout's buffers plus one scratch buffer in the arena for each node before the tail that
     * can use one ({@link DeviceModel#arenaScratch}), alive at the node's step alone: each gets the
     * largest size whose packed arena, with the persistent bytes that no longer count those nodes,
     * stays within {@code limit} (the arena and persistent bytes without them); null when even the
     * smallest sizes do not fit so (the nodes then use their persistent bytes, as before).
     */
    private record Scratch(int[] node, int[] band, long[] bytes, int[] first, int[] last, long[] offsets, long arena) {
        static Scratch of(Graph g, int n, int h, int w, DeviceModel model, Layout best, long limit) {
            int t = Math.min(best.tailStart(), g.size());
            int[] hs = g.heights(h), ws = g.widths(w);
            List<Integer> ids = new ArrayList<>();
            List<long[]> sizes = new ArrayList<>();
            for (int id = 1; id < t; id++) {
                int src = g.node(id).input(0);
                long[] c = model.arenaScratch(g.node(id), new int[] {n, hs[src], ws[src], g.channels(src)}, new int[] {n, hs[id], ws[id], g.channels(id)});
                if (c.length == 0) continue;
                ids.add(id);
                sizes.add(c);
            }
            if (ids.isEmpty()) return null;
            int[] pick = new int[ids.size()];   // index into each node's sizes: the smallest first
            Scratch fits = packed(best, ids, sizes, pick);
            if (fits.arena + best.persistentBesideScratch > limit) return null;
            for (int i = 0; i < pick.length; i++) {
                for (int j = sizes.get(i).length - 1; j > 0; j--) {
                    int[] trial = pick.clone();
                    trial[i] = j;
                    Scratch s = packed(best, ids, sizes, trial);
                    if (s.arena + best.persistentBesideScratch <= limit) {
                        pick = trial;
                        fits = s;
                        break;
                    }
                }
            }
            return fits;
        }

        private static Scratch packed(Layout best, List<Integer> ids, List<long[]> sizes, int[] pick) {
            int b = best.bytes.length, m = b + ids.size();
            int[] node = java.util.Arrays.copyOf(best.node, m), band = java.util.Arrays.copyOf(best.band, m);
            int[] first = java.util.Arrays.copyOf(best.first, m), last = java.util.Arrays.copyOf(best.last, m);
            long[] bytes = java.util.Arrays.copyOf(best.bytes, m);
            for (int i = 0; i < ids.size(); i++) {
                node[b + i] = ids.get(i);
                band[b + i] = MemoryPlan.SCRATCH;
                bytes[b + i] = sizes.get(i)[pick[i]];
                first[b + i] = ids.get(i);
                last[b + i] = ids.get(i);
            }
            long[] offsets = ArenaPacker.pack(bytes, first, last);
            return new Scratch(node, band, bytes, first, last, offsets, ArenaPacker.arenaBytes(bytes, offsets));
        }
    }

    /** The buffers, lifetimes and transients of one way to run the graph, before packing. */
    private record Layout(Bands bands, int[] node, int[] band, long[] bytes, int[] first, int[] last, long lowerBound, long scratch,
                          long persistent, long persistentBesideScratch) {
        long cost() {
            return lowerBound + scratch + persistent;
        }

        int bandCount() {
            return bands == null ? 1 : bands.count;
        }

        int tailStart() {
            return bands == null ? Integer.MAX_VALUE : bands.start;
        }

        static Layout of(Graph g, int n, int[] hs, int[] ws, ConcatPlan placement, DeviceModel model, Bands bands) {
            int size = g.size(), out = g.output();
            int t = bands == null ? size : bands.start, len = size - t, count = bands == null ? 0 : bands.count;
            int end = bands == null ? size - 1 : t + count * len - 1;
            List<List<Integer>> readers = g.consumers();
            List<int[]> ids = new ArrayList<>();           // (node, band)
            List<long[]> spans = new ArrayList<>();        // (bytes, first, last)
            // whole buffers: concatenation roots of the nodes before the tail, and the output
            int[] first = new int[size], last = new int[size];
            java.util.Arrays.fill(first, -1);
            for (int id = 1; id < t; id++) {
                int root = placement.root(id);
                if (first[root] < 0) first[root] = id;
                int dies = id == out ? end : id;
                for (int r : readers.get(id)) dies = Math.max(dies, r < t ? r : t + (count - 1) * len + (r - t));
                last[root] = Math.max(last[root], dies);
            }
            for (int r = 1; r < t; r++) {
                if (first[r] < 0) continue;
                ids.add(new int[] {r, -1});
                spans.add(new long[] {bufferBytes(n, hs[first[r]], ws[first[r]], g.channels(r), model), first[r], last[r]});
            }
            long scratch = 0, persistent = 0, beside = 0;   // beside: the persistent bytes of nodes that cannot take arena scratch
            for (int id = 1; id < t; id++) {
                Node node = g.node(id);
                int src = node.input(0);
                int[] in = {n, hs[src], ws[src], g.channels(src)}, o = {n, hs[id], ws[id], g.channels(id)};
                boolean inDense = src == 0 || g.channels(src) == g.channels(placement.root(src));
                boolean outDense = g.channels(id) == g.channels(placement.root(id));
                scratch = Math.max(scratch, model.scratch(node, in, o, inDense, outDense));
                persistent = Math.max(persistent, model.persistent(node, in, o));
                if (model.arenaScratch(node, in, o).length == 0) beside = Math.max(beside, model.persistent(node, in, o));
            }
            if (bands != null) {
                ids.add(new int[] {out, -1});
                // the whole output: band 0 writes its first rows at the output node's step, band copies fill it to the end
                spans.add(new long[] {bufferBytes(n, hs[out], ws[out], g.channels(out), model), out, end});
                for (int k = 0; k < count; k++) {
                    for (int v = t; v < size; v++) {
                        int step = t + k * len + (v - t);
                        int dies = step;
                        for (int r : readers.get(v)) dies = Math.max(dies, t + k * len + (r - t));
                        ids.add(new int[] {v, k});
                        spans.add(new long[] {bufferBytes(n, bands.rows(k, v), ws[v], g.channels(v), model), step, dies});
                        Node node = g.node(v);
                        int src = node.input(0);
                        int[] in = {n, bands.readTo(k, v, 0) - bands.readFrom(k, v, 0), ws[src], g.channels(src)};
                        int[] o = {n, bands.rows(k, v), ws[v], g.channels(v)};
                        boolean inDense = src >= t || src == 0 || g.channels(src) == g.channels(placement.root(src));
                        scratch = Math.max(scratch, model.scratch(node, in, o, inDense, true));
                        persistent = Math.max(persistent, model.persistent(node, in, o));
                        beside = Math.max(beside, model.persistent(node, in, o));
                    }
                }
            }
            int b = ids.size();
            int[] node = new int[b], band = new int[b], f = new int[b], l = new int[b];
            long[] bytes = new long[b];
            for (int i = 0; i < b; i++) {
                node[i] = ids.get(i)[0];
                band[i] = ids.get(i)[1];
                bytes[i] = spans.get(i)[0];
                f[i] = (int) spans.get(i)[1];
                l[i] = (int) spans.get(i)[2];
            }
            return new Layout(bands, node, band, bytes, f, l, ArenaPacker.lowerBound(bytes, f, l), scratch, persistent, beside);
        }

        private static long bufferBytes(int n, int h, int w, int c, DeviceModel model) {
            return DeviceModel.align((long) n * h * w * c * model.elementBytes());
        }
    }
}
