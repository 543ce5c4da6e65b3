package dev.headroom.core.graph;

/**
 * The operations an image model graph is made of. Every tensor is NHWC; an op says how its output
 * channel count follows from its inputs' (see {@link Graph#channels(int)}) and how its spatial size
 * follows from its input's ({@link #outHeight}, {@link #outWidth}).
 *
 * <p>Weights are named, not held: a graph is pure structure, and the runtime binds the names to
 * tensors from a model file. Convolution kernels are always HWIO, (kh, kw, cin, cout), whatever
 * layout the file used; loaders transpose.
 */
public sealed interface Op {

    /** The image entering the graph. */
    record Input(int channels) implements Op {}

    /**
     * 2-D convolution, stride 1, kernel (kh, kw, cin, cout), with a fused epilogue:
     * {@code y = act(conv(x) + bias)}, and when {@code residualScale != 0} (the node then has a
     * second input r) {@code y = residualScale * act(conv(x) + bias) + r}: the scaled residual
     * sums of RRDB, RDN and RRDN in one pass instead of three. When also {@code outerScale != 0}
     * (a third input r2) {@code y = outerScale * (residualScale * act(conv(x) + bias) + r) + r2}:
     * RRDB's residual around its last dense block's residual, in the same pass.
     */
    record Conv2d(String weight, String bias, int kh, int kw, int cin, int cout, Padding padding, Act act, float residualScale,
                  float outerScale) implements Op {
        public Conv2d {
            if (kh < 1 || kw < 1 || cin < 1 || cout < 1) {
                throw new IllegalArgumentException("conv " + weight + ": bad kernel " + kh + "x" + kw + " " + cin + "->" + cout);
            }
        }

        public Conv2d(String weight, String bias, int kh, int kw, int cin, int cout, Padding padding, Act act) {
            this(weight, bias, kh, kw, cin, cout, padding, act, 0f, 0f);
        }

        public Conv2d(String weight, String bias, int kh, int kw, int cin, int cout, Padding padding, Act act, float residualScale) {
            this(weight, bias, kh, kw, cin, cout, padding, act, residualScale, 0f);
        }

        public boolean hasResidual() {
            return residualScale != 0f;
        }

        public boolean hasOuterResidual() {
            return outerScale != 0f;
        }

        Conv2d withAct(Act a) {
            return new Conv2d(weight, bias, kh, kw, cin, cout, padding, a, residualScale, outerScale);
        }

        Conv2d withResidual(float scale) {
            return new Conv2d(weight, bias, kh, kw, cin, cout, padding, act, scale, outerScale);
        }

        Conv2d withOuterResidual(float scale) {
            return new Conv2d(weight, bias, kh, kw, cin, cout, padding, act, residualScale, scale);
        }
    }

    /** Elementwise activation. */
    record Activation(Act act) implements Op {}

    /** Channel concatenation; the runtime lets producers write straight into channel slices. */
    record Concat() implements Op {}

    /** Elementwise sum of two or more inputs of equal shape. */
    record Add() implements Op {}

    /** y = factor * x. */
    record Scale(float factor) implements Op {}

    /** Nearest-neighbour upsampling by an integer factor. */
    record UpsampleNearest(int factor) implements Op {}

    /** Depth to space: (H, W, C*r*r) to (H*r, W*r, C), in the given channel order. */
    record PixelShuffle(int factor, ChannelOrder order) implements Op {}

    /** Space to depth: (H*r, W*r, C) to (H, W, C*r*r), in the given channel order. */
    record PixelUnshuffle(int factor, ChannelOrder order) implements Op {}

    /**
     * GroupNorm over {@code groups} groups of channels with statistics over the whole image, then
     * per-channel {@code weight} (gamma) and {@code bias} (beta), and SiLU after it when {@code silu}:
     * {@code y = (x - mean_g) / sqrt(var_g + eps) * gamma + beta}. Statistics are fp32 sums of every
     * row, combined in double, so tiles of rows give the same mean and variance as the whole image.
     */
    record GroupNorm(String weight, String bias, int groups, float eps, boolean silu) implements Op {}

    /**
     * Convolution with a stride and explicit, possibly asymmetric, zero padding (top, bottom, left,
     * right): the encoder's downsampling (stride 2, padding 0/1/0/1, as diffusers' Downsample2D).
     * Kernel HWIO like {@link Conv2d}; no fused epilogue beyond the bias.
     */
    record StridedConv(String weight, String bias, int k, int cin, int cout, int stride, int padTop, int padBottom, int padLeft,
                       int padRight) implements Op {
        public int outSize(int in, boolean rows) {
            return (in + (rows ? padTop + padBottom : padLeft + padRight) - k) / stride + 1;
        }
    }

    /**
     * Single-head scaled dot-product attention over every spatial position of each image: inputs
     * q, k, v (N,H,W,C); out[p] = sum_j softmax_j(q[p].k[j] * scale) v[j]. Backends keep memory
     * linear in the number of positions (chunked, never the whole score matrix).
     */
    record Attention(float scale) implements Op {}

    default int outHeight(int inHeight) {
        return switch (this) {
            case Conv2d c when c.padding() == Padding.VALID -> inHeight - c.kh() + 1;
            case StridedConv s -> s.outSize(inHeight, true);
            case UpsampleNearest u -> inHeight * u.factor();
            case PixelShuffle p -> inHeight * p.factor();
            case PixelUnshuffle p -> inHeight / p.factor();
            default -> inHeight;
        };
    }

    default int outWidth(int inWidth) {
        return switch (this) {
            case Conv2d c when c.padding() == Padding.VALID -> inWidth - c.kw() + 1;
            case StridedConv s -> s.outSize(inWidth, false);
            case UpsampleNearest u -> inWidth * u.factor();
            case PixelShuffle p -> inWidth * p.factor();
            case PixelUnshuffle p -> inWidth / p.factor();
            default -> inWidth;
        };
    }

    /** Short name for traces and errors. */
    default String kind() {
        return switch (this) {
            case Input i -> "input";
            case Conv2d c -> "conv" + c.kh() + "x" + c.kw();
            case Activation a -> a.act().kind().name().toLowerCase();
            case Concat c -> "concat";
            case Add a -> "add";
            case Scale s -> "scale";
            case UpsampleNearest u -> "upsample";
            case PixelShuffle p -> "pixel_shuffle";
            case PixelUnshuffle p -> "pixel_unshuffle";
            case GroupNorm g -> g.silu() ? "group_norm+silu" : "group_norm";
            case StridedConv s -> "conv" + s.k() + "x" + s.k() + "/" + s.stride();
            case Attention a -> "attention";
        };
    }
}
