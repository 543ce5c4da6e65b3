package dev.headroom.core.graph;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * A static image-model graph: nodes in topological order (node i reads only nodes before i),
 * node 0 is the input, one output. Channel counts are checked and known at build time; spatial
 * sizes follow from the input's at run time. Immutable.
 */
public final class Graph {
    private final List<Node> nodes;
    private final int[] channels;
    private final int output;

    Graph(List<Node> nodes, int[] channels, int output) {
        this.nodes = List.copyOf(nodes);
        this.channels = channels.clone();
        this.output = output;
    }

    public List<Node> nodes() {
        return nodes;
    }

    public Node node(int id) {
        return nodes.get(id);
    }

    public int size() {
        return nodes.size();
    }

    public int output() {
        return output;
    }

    public int inputChannels() {
        return channels[0];
    }

    public int outputChannels() {
        return channels[output];
    }

    /** Channel count of node {@code id}'s output. */
    public int channels(int id) {
        return channels[id];
    }

    /** Output height of every node for an input of height h (index = node id). */
    public int[] heights(int h) {
        int[] out = new int[nodes.size()];
        for (Node n : nodes) {
            out[n.id()] = n.id() == 0 ? h : n.op().outHeight(out[n.input(0)]);
        }
        return out;
    }

    /** Output width of every node for an input of width w. */
    public int[] widths(int w) {
        int[] out = new int[nodes.size()];
        for (Node n : nodes) {
            out[n.id()] = n.id() == 0 ? w : n.op().outWidth(out[n.input(0)]);
        }
        return out;
    }

    /** Spatial scale from input to output (2 for an x2 upscaler). */
    public int scale() {
        int probe = 96;
        return heights(probe)[output] / probe;
    }

    /**
     * What the input's height and width must be a multiple of: the product of the pixel-unshuffle
     * factors on the way from the input (2 for Real-ESRGAN's x2, which unshuffles by 2 and runs
     * its x4 body). Tiles of other sizes are padded up to it ({@code TiledUpscaler}).
     */
    public int modulus() {
        int[] m = new int[nodes.size()];
        int max = 1;
        for (Node n : nodes) {
            int in = 1;
            for (int i : n.inputs()) in = Math.max(in, m[i]);
            m[n.id()] = n.op() instanceof Op.PixelUnshuffle p ? Math.multiplyExact(in, p.factor()) : in;
            max = Math.max(max, m[n.id()]);
        }
        return max;
    }

    /** Ids of the nodes that read each node's output. */
    public List<List<Integer>> consumers() {
        List<List<Integer>> c = new ArrayList<>();
        for (int i = 0; i < nodes.size(); i++) c.add(new ArrayList<>());
        for (Node n : nodes) {
            for (int in : n.inputs()) c.get(in).add(n.id());
        }
        c.replaceAll(Collections::unmodifiableList);
        return Collections.unmodifiableList(c);
    }

    /** All weight names the graph needs bound. */
    public Set<String> weightNames() {
        Set<String> names = new LinkedHashSet<>();
        for (Node n : nodes) {
            if (n.op() instanceof Op.Conv2d c) {
                names.add(c.weight());
                if (c.bias() != null) names.add(c.bias());
                if (c.act().preluWeight() != null) names.add(c.act().preluWeight());
            } else if (n.op() instanceof Op.Activation a && a.act().preluWeight() != null) {
                names.add(a.act().preluWeight());
            } else if (n.op() instanceof Op.GroupNorm g) {
                names.add(g.weight());
                names.add(g.bias());
            } else if (n.op() instanceof Op.StridedConv s) {
                names.add(s.weight());
                if (s.bias() != null) names.add(s.bias());
            }
        }
        return names;
    }

    public long convCount() {
        return nodes.stream().filter(n -> n.op() instanceof Op.Conv2d).count();
    }

    /** Multiply-adds per input pixel, times two: the FLOPs of one input pixel. */
    public double flopsPerInputPixel() {
        int probe = 96;
        int[] h = heights(probe);
        int[] w = widths(probe);
        double flops = 0;
        for (Node n : nodes) {
            if (n.op() instanceof Op.Conv2d c) {
                flops += 2.0 * h[n.id()] * w[n.id()] * c.kh() * c.kw() * c.cin() * c.cout();
            } else if (n.op() instanceof Op.StridedConv s) {
                flops += 2.0 * h[n.id()] * w[n.id()] * s.k() * s.k() * s.cin() * s.cout();
            } else if (n.op() instanceof Op.Attention) {
                double positions = (double) h[n.id()] * w[n.id()];
                flops += 4.0 * positions * positions * channels[n.id()];
            }
        }
        return flops / ((double) probe * probe);
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder();
        for (Node n : nodes) sb.append(n).append(" -> ").append(channels[n.id()]).append("ch\n");
        return sb.toString();
    }
}
