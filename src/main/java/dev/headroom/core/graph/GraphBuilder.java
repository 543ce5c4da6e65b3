package dev.headroom.core.graph;

import java.util.ArrayList;
import java.util.List;

/**
 * Builds a {@link Graph} node by node, checking channel counts as it goes, so that a model file
 * whose weights do not fit its graph fails here with the layer's name rather than inside an op.
 */
public final class GraphBuilder {
    private final List<Node> nodes = new ArrayList<>();
    private final List<Integer> channels = new ArrayList<>();

    public GraphBuilder(int inputChannels) {
        add(new Op.Input(inputChannels), "input", new int[0], inputChannels);
    }

    public int input() {
        return 0;
    }

    public int channels(int id) {
        return channels.get(id);
    }

    public int conv(String name, int in, String weight, String bias, int kh, int kw, int cout, Padding padding, Act act) {
        int cin = channels(in);
        return add(new Op.Conv2d(weight, bias, kh, kw, cin, cout, padding, act), name, new int[] {in}, cout);
    }

    /** A same-padded k x k convolution named like PyTorch modules: {@code name.weight}, {@code name.bias}. */
    public int conv(String name, int in, int k, int cout, Act act) {
        return conv(name, in, name + ".weight", name + ".bias", k, k, cout, Padding.SAME, act);
    }

    public int act(String name, int in, Act act) {
        return add(new Op.Activation(act), name, new int[] {in}, channels(in));
    }

    public int concat(String name, int... in) {
        int c = 0;
        for (int i : in) c += channels(i);
        return add(new Op.Concat(), name, in, c);
    }

    public int add(String name, int... in) {
        for (int i : in) {
            if (channels(i) != channels(in[0])) {
                throw new IllegalArgumentException("add " + name + ": inputs have " + channels(in[0]) + " and " + channels(i) + " channels");
            }
        }
        return add(new Op.Add(), name, in, channels(in[0]));
    }

    public int scale(String name, int in, float factor) {
        return add(new Op.Scale(factor), name, new int[] {in}, channels(in));
    }

    public int upsample(String name, int in, int factor) {
        return add(new Op.UpsampleNearest(factor), name, new int[] {in}, channels(in));
    }

    public int pixelShuffle(String name, int in, int factor, ChannelOrder order) {
        int c = channels(in);
        if (c % (factor * factor) != 0) {
            throw new IllegalArgumentException("pixel shuffle " + name + ": " + c + " channels is not a multiple of " + factor + "^2");
        }
        return add(new Op.PixelShuffle(factor, order), name, new int[] {in}, c / (factor * factor));
    }

    public int pixelUnshuffle(String name, int in, int factor, ChannelOrder order) {
        return add(new Op.PixelUnshuffle(factor, order), name, new int[] {in}, channels(in) * factor * factor);
    }

    public int groupNorm(String name, int in, int groups, float eps, boolean silu) {
        if (channels(in) % groups != 0) {
            throw new IllegalArgumentException("group norm " + name + ": " + channels(in) + " channels do not split into " + groups + " groups");
        }
        return add(new Op.GroupNorm(name + ".weight", name + ".bias", groups, eps, silu), name, new int[] {in}, channels(in));
    }

    /** A k x k convolution with a stride and explicit padding, named {@code name.weight}, {@code name.bias}. */
    public int stridedConv(String name, int in, int k, int cout, int stride, int padTop, int padBottom, int padLeft, int padRight) {
        return add(new Op.StridedConv(name + ".weight", name + ".bias", k, channels(in), cout, stride, padTop, padBottom, padLeft, padRight),
                name, new int[] {in}, cout);
    }

    /** Single-head attention of q over the positions of k and v (all with the same channels). */
    public int attention(String name, int q, int k, int v, float scale) {
        if (channels(q) != channels(k) || channels(k) != channels(v)) {
            throw new IllegalArgumentException("attention " + name + ": q, k, v have " + channels(q) + ", " + channels(k) + ", " + channels(v) + " channels");
        }
        return add(new Op.Attention(scale), name, new int[] {q, k, v}, channels(v));
    }

    /** Finishes with {@code output} as the graph's output, with activations and scaled residual sums fused into convolutions. */
    public Graph build(int output) {
        return Fusion.fuse(new Graph(nodes, channels.stream().mapToInt(Integer::intValue).toArray(), output));
    }

    /** Finishes without fusion (used by tests that compare fused and unfused graphs). */
    public Graph buildUnfused(int output) {
        return new Graph(nodes, channels.stream().mapToInt(Integer::intValue).toArray(), output);
    }

    private int add(Op op, String name, int[] inputs, int outChannels) {
        int id = nodes.size();
        nodes.add(new Node(id, op, inputs, name));
        channels.add(outChannels);
        return id;
    }
}
