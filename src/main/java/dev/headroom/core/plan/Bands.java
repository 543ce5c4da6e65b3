package dev.headroom.core.plan;

import dev.headroom.core.graph.Graph;
import dev.headroom.core.graph.Node;
import dev.headroom.core.graph.Op;
import dev.headroom.core.graph.Padding;
import java.util.ArrayList;
import java.util.List;

/**
 * Running a graph's tail in horizontal bands: the nodes from {@link #start} to the output are run
 * once per band of output rows, each band on only the rows it needs, so the high-resolution
 * tensors of an upscaler's tail (RRDBNet's 4x-size feature maps, which set the whole-tensor
 * arena's lower bound) are never whole. In NHWC the rows of an image are contiguous, so a band's
 * inputs are views, never copies; only the output's rows are copied out of each band.
 *
 * <p>The rows come from the output backwards. A band delivers output rows [a, b). A node asked for
 * rows [lo, hi) computes:
 * <ul>
 * <li>a convolution (SAME padding, kh rows, pt = (kh-1)/2 above and kh-1-pt below): rows
 *     [lo-pt, hi+pb), clipped to the image, from its input's same rows. It runs on that view with
 *     its own zero padding, so its first pt and last pb rows are wrong where the view stops inside
 *     the image, and only [lo, hi) is read from it. Residual inputs are read over the same rows.</li>
 * <li>an elementwise op: [lo, hi) from [lo, hi) of each input;</li>
 * <li>a nearest upsample or pixel shuffle by f: [f*floor(lo/f), f*ceil(hi/f)) from
 *     [floor(lo/f), ceil(hi/f)); a pixel unshuffle: [lo, hi) from [lo*f, hi*f).</li>
 * </ul>
 * What a node computes is the union of what its readers ask for. Each value read is therefore
 * exactly what the whole-tensor run computes, which is why banding changes no output value: the
 * CPU backend gives bit-identical results ({@code GraphRunnerTest}).
 *
 * <p>Only single images (batch 1) are banded: the rows of a batch are not contiguous.
 */
public final class Bands {
    /** A band's output is at least this many rows; fewer would spend more on the halo than they save. */
    static final int MIN_ROWS = 16;

    /** First node run in bands; every node from here to the output is. */
    public final int start;
    /** Number of bands. */
    public final int count;
    private final int output;
    private final int[] outFrom, outTo;             // [band]: output rows delivered
    private final int[][] from, to;                 // [band][node - start]: rows the band's buffer holds
    private final int[][][] readFrom, readTo;       // [band][node - start][input]: rows read from that input

    private Bands(int start, int count, int output, int[] outFrom, int[] outTo, int[][] from, int[][] to, int[][][] readFrom, int[][][] readTo) {
        this.start = start;
        this.count = count;
        this.output = output;
        this.outFrom = outFrom;
        this.outTo = outTo;
        this.from = from;
        this.to = to;
        this.readFrom = readFrom;
        this.readTo = readTo;
    }

    public boolean banded(int node) {
        return node >= start;
    }

    /** First row of node {@code node}'s buffer in band {@code band}, in the whole tensor's rows. */
    public int from(int band, int node) {
        return from[band][node - start];
    }

    /** Rows the band's buffer of {@code node} holds. */
    public int rows(int band, int node) {
        return to[band][node - start] - from[band][node - start];
    }

    /** Rows of input {@code input} that {@code node} reads in {@code band}: [readFrom, readTo) in whole-tensor rows. */
    public int readFrom(int band, int node, int input) {
        return readFrom[band][node - start][input];
    }

    public int readTo(int band, int node, int input) {
        return readTo[band][node - start][input];
    }

    /** Output rows band {@code band} delivers: [outFrom, outTo). */
    public int outFrom(int band) {
        return outFrom[band];
    }

    public int outTo(int band) {
        return outTo[band];
    }

    public int output() {
        return output;
    }

    @Override
    public String toString() {
        return count + " bands from node " + start;
    }

    static boolean bandable(Op op) {
        return switch (op) {
            case Op.Conv2d c -> c.padding() == Padding.SAME;
            case Op.Activation a -> true;
            case Op.Add a -> true;
            case Op.Scale s -> true;
            case Op.UpsampleNearest u -> true;
            case Op.PixelShuffle p -> true;
            case Op.PixelUnshuffle p -> true;
            case Op.Concat c -> false;     // its inputs are placed in channel slices of one whole buffer
            case Op.Input i -> false;
            case Op.GroupNorm g -> false;  // statistics of the whole image
            case Op.Attention a -> false;  // every position reads every other
            case Op.StridedConv s -> false;
        };
    }

    /**
     * Where a tail may start: at a node that raises the resolution (upsample, pixel shuffle), or at
     * the node feeding it, provided every node from there to the output can run in bands and is
     * read by a later node. Latest first. Empty when the output is not the last node.
     */
    static List<Integer> starts(Graph g, int[] hs) {
        List<Integer> out = new ArrayList<>();
        int last = g.size() - 1;
        if (g.output() != last) return out;
        List<List<Integer>> readers = g.consumers();
        int s0 = last;
        while (s0 > 1 && bandable(g.node(s0 - 1).op()) && !readers.get(s0 - 1).isEmpty()) s0--;
        if (!bandable(g.node(s0).op())) return out;
        for (int t = last; t >= s0; t--) {
            Node node = g.node(t);
            if (hs[t] <= hs[node.input(0)]) continue;
            if (!out.contains(t)) out.add(t);
            int feed = node.input(0);
            if (feed >= s0 && !out.contains(feed)) out.add(feed);
        }
        out.sort(java.util.Comparator.reverseOrder());
        return out;
    }

    /** The band counts worth trying for an output of {@code outRows}: 2, 4, 8, ... while a band keeps {@link #MIN_ROWS}. */
    static List<Integer> counts(int outRows) {
        List<Integer> out = new ArrayList<>();
        for (int k = 2; outRows / k >= MIN_ROWS; k *= 2) out.add(k);
        return out;
    }

    /** The rows of each band for a tail from {@code start} in {@code count} bands, for heights {@code hs}. */
    static Bands of(Graph g, int[] hs, int start, int count) {
        int out = g.output(), tail = out - start + 1;
        int outRows = hs[out];
        int[] outFrom = new int[count], outTo = new int[count];
        int[][] from = new int[count][tail], to = new int[count][tail];
        int[][][] readFrom = new int[count][tail][], readTo = new int[count][tail][];
        for (int k = 0; k < count; k++) {
            outFrom[k] = (int) ((long) outRows * k / count);
            outTo[k] = (int) ((long) outRows * (k + 1) / count);
            int[] needFrom = new int[tail], needTo = new int[tail];
            java.util.Arrays.fill(needFrom, Integer.MAX_VALUE);
            java.util.Arrays.fill(needTo, Integer.MIN_VALUE);
            needFrom[tail - 1] = outFrom[k];
            needTo[tail - 1] = outTo[k];
            for (int v = out; v >= start; v--) {
                int i = v - start;
                if (needFrom[i] >= needTo[i]) throw new IllegalStateException("node " + v + " is read by no later node");
                Node node = g.node(v);
                int lo = needFrom[i], hi = needTo[i], inLo, inHi;
                switch (node.op()) {
                    case Op.Conv2d c -> {
                        int pt = (c.kh() - 1) / 2, pb = c.kh() - 1 - pt;
                        inLo = Math.max(0, lo - pt);
                        inHi = Math.min(hs[v], hi + pb);
                        lo = inLo;
                        hi = inHi;
                    }
                    case Op.UpsampleNearest u -> {
                        inLo = lo / u.factor();
                        inHi = ceilDiv(hi, u.factor());
                        lo = inLo * u.factor();
                        hi = inHi * u.factor();
                    }
                    case Op.PixelShuffle p -> {
                        inLo = lo / p.factor();
                        inHi = ceilDiv(hi, p.factor());
                        lo = inLo * p.factor();
                        hi = inHi * p.factor();
                    }
                    case Op.PixelUnshuffle p -> {
                        inLo = lo * p.factor();
                        inHi = hi * p.factor();
                    }
                    default -> {
                        inLo = lo;
                        inHi = hi;
                    }
                }
                from[k][i] = lo;
                to[k][i] = hi;
                readFrom[k][i] = new int[node.arity()];
                readTo[k][i] = new int[node.arity()];
                for (int j = 0; j < node.arity(); j++) {
                    int u = node.input(j);
                    readFrom[k][i][j] = inLo;
                    readTo[k][i][j] = inHi;
                    if (u >= start) {
                        needFrom[u - start] = Math.min(needFrom[u - start], inLo);
                        needTo[u - start] = Math.max(needTo[u - start], inHi);
                    }
                }
            }
        }
        return new Bands(start, count, out, outFrom, outTo, from, to, readFrom, readTo);
    }

    private static int ceilDiv(int a, int b) {
        return -Math.floorDiv(-a, b);
    }
}
