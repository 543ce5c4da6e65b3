package dev.headroom.runtime.gpu;

import dev.headroom.core.Precision;
import dev.headroom.core.graph.Node;
import dev.headroom.core.graph.Op;
import dev.headroom.core.plan.DeviceModel;

/**
 * What the CUDA backend ({@link CudaOps}) allocates besides planned activations: weights in the
 * compute precision (kernel) and fp32 (bias, PReLU slopes); the uploaded input; a packed copy of a
 * convolution's input when it is a channel slice, and a temporary output when the output is one;
 * and one convolution workspace, kept, of the largest {@link #workspaceCap} any convolution
 * asked for. Pure arithmetic: it needs no GPU, so plans for a card can be made anywhere.
 *
 * <p>The packed input and temporary output are what the legacy and unfused strategies need; a
 * fused cuDNN graph or a cuBLAS GEMM needs neither, and which strategy a shape takes is only known
 * once it has been timed. So the scratch is an upper bound, never an under-estimate (on the H100,
 * RRDBNet fp16 at 256 all fused: 185.1 MiB predicted, 161.1 measured, 24 of it scratch).
 */
public final class CudaMemoryModel implements DeviceModel {
    /** No convolution's workspace exceeds this; algorithms that want more are not considered. */
    static final long MAX_WORKSPACE = 64L << 20;

    private final Precision precision;

    public CudaMemoryModel(Precision precision) {
        this.precision = precision;
    }

    /**
     * The workspace a convolution may use: as many bytes as its input, at most 64 MiB. Tying it to
     * the input keeps it a small share of the tile's memory, so that small tiles stay small. On the
     * H100 this costs no speed: RRDBNet x4 fp16 ran 47.8-52.9 ms (256) and 110-111 ms (512) per tile
     * with it and with a flat 64 MiB workspace alike.
     */
    static long workspaceCap(long inputBytes) {
        return DeviceModel.align(Math.min(inputBytes, MAX_WORKSPACE));
    }

    @Override
    public int elementBytes() {
        return precision.bytes;
    }

    @Override
    public long weightBytes(Op.Conv2d c) {
        long b = DeviceModel.align((long) c.kh() * c.kw() * c.cin() * c.cout() * precision.bytes);
        if (c.bias() != null) b += DeviceModel.align(c.cout() * 4L);
        if (c.act().preluWeight() != null) b += DeviceModel.align(c.cout() * 4L);
        return b;
    }

    /**
     * Kernels held compact (int8, fp8, NF4) stay compact on the device ({@link CompactKernel}'s
     * blob, beside fp32 bias and slopes), and each session keeps one scratch of the largest such
     * kernel expanded into the compute precision ({@link WeightExpander}): counted with the kept
     * workspace. Other kernels go to the device in the compute precision, as {@link #weightBytes}.
     */
    @Override
    public DeviceModel holding(dev.headroom.core.Weights weights) {
        java.util.function.Function<Op.Conv2d, dev.headroom.core.TensorData> compact = c ->
                weights.has(c.weight()) && weights.get(c.weight()).compact() != null ? weights.get(c.weight()) : null;
        DeviceModel dense = this;
        return new DeviceModel() {
            private long expansion = -1;

            public int elementBytes() { return dense.elementBytes(); }

            public long weightBytes(Op.Conv2d c) {
                dev.headroom.core.TensorData k = compact.apply(c);
                if (k == null) return dense.weightBytes(c);
                long b = DeviceModel.align(CompactKernel.of(c, k).bytes());
                if (c.bias() != null) b += DeviceModel.align(c.cout() * 4L);
                if (c.act().preluWeight() != null) b += DeviceModel.align(c.cout() * 4L);
                return b;
            }

            public long inputBytes(int n, int h, int w, int c) { return dense.inputBytes(n, h, w, c); }

            public long scratch(Node node, int[] in, int[] out, boolean inDense, boolean outDense) { return dense.scratch(node, in, out, inDense, outDense); }

            public long[] arenaScratch(Node node, int[] in, int[] out) { return dense.arenaScratch(node, in, out); }

            public long persistent(Node node, int[] in, int[] out) {
                long p = dense.persistent(node, in, out);
                return node.op() instanceof Op.Conv2d ? p + expansion(node) : p;
            }

            /** The largest compact kernel expanded, over the graph this node belongs to (computed once). */
            private long expansion(Node node) {
                if (expansion < 0) {
                    expansion = 0;
                    for (String name : weights.names()) {
                        dev.headroom.core.TensorData t = weights.get(name);
                        if (t.compact() != null) expansion = Math.max(expansion, DeviceModel.align(t.count() * precision.bytes));
                    }
                }
                return expansion;
            }
        };
    }

    @Override
    public long inputBytes(int n, int h, int w, int c) {
        return DeviceModel.align((long) n * h * w * c * precision.bytes);
    }

    @Override
    public long scratch(Node node, int[] in, int[] out, boolean inDense, boolean outDense) {
        if (!(node.op() instanceof Op.Conv2d)) return 0;
        return (inDense ? 0 : DeviceModel.align(bytes(in))) + (outDense ? 0 : DeviceModel.align(bytes(out)));
    }

    @Override
    public long persistent(Node node, int[] in, int[] out) {
        // attention borrows the convolutions' workspace, growing it to its need where that is more (CudaOps.attention)
        if (node.op() instanceof Op.Attention) return attentionScratch((long) in[1] * in[2], in[3], precision);
        return node.op() instanceof Op.Conv2d ? workspaceCap(bytes(in)) : 0;
    }

    /** Attention's chunks in the arena ({@link VaeKernels#arenaChunks}): none when HEADROOM_VAE_ATTENTION=lent. */
    @Override
    public long[] arenaScratch(Node node, int[] in, int[] out) {
        if (!(node.op() instanceof Op.Attention)) return new long[0];
        long[] sizes = VaeKernels.arenaChunks((long) in[1] * in[2], in[3], precision);
        for (int i = 0; i < sizes.length; i++) sizes[i] = DeviceModel.align(sizes[i]);
        return sizes;
    }

    /** Attention's chunk of scores and probabilities and its cuBLAS workspace ({@link VaeKernels#attentionNeed}), in the convolutions' workspace. */
    public static long attentionScratch(long positions, int channels, Precision precision) {
        return DeviceModel.align(VaeKernels.attentionNeed(positions, positions, channels, precision));
    }

    private long bytes(int[] s) {
        return (long) s[0] * s[1] * s[2] * s[3] * precision.bytes;
    }
}
