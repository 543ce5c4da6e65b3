package dev.headroom.runtime.gpu;

import dev.headroom.core.Precision;
import dev.headroom.core.graph.Act;
import dev.headroom.core.graph.Op;
import dev.headroom.core.graph.Padding;
import dev.headroom.cuda.Cudnn;
import dev.headroom.runtime.Tensor;

/** One convolution call as {@link Convolutions} sees it: its operands, its choice key, and what cuDNN may take of its views. */
final class ConvCalls {
    private ConvCalls() {}

    /** One convolution call's operands; {@code residual} and {@code outer} may be null. */
    record Call(CudaConvWeights p, Tensor in, Tensor residual, Tensor outer, Tensor out) {
        Key key() {
            Op.Conv2d op = p.op;
            return new Key(op.kh(), op.kw(), op.cin(), op.cout(), op.padding(), in.n, in.h, in.w, in.stride, out.stride,
                    residual == null ? 0 : residual.stride, op.residualScale(), outer == null ? 0 : outer.stride, op.outerScale(),
                    op.act().kind(), op.act().slope(), op.bias() != null, aligned());
        }

        boolean aligned() {
            return ConvCalls.aligned(in) && ConvCalls.aligned(out) && (residual == null || ConvCalls.aligned(residual))
                    && (outer == null || ConvCalls.aligned(outer));
        }

        boolean pointwise() {
            return p.op.kh() == 1 && p.op.kw() == 1;
        }
    }

    /**
     * Shape, layout and epilogue: what decides which strategy is fastest (pointers may differ
     * between calls, and layers with the same key share one choice). A record, not a string,
     * because it is looked up on every convolution call. Strides are 0 for an absent residual.
     */
    record Key(int kh, int kw, int cin, int cout, Padding padding, int n, int h, int w, int inStride, int outStride,
                       int residualStride, float residualScale, int outerStride, float outerScale, Act.Kind act, float leak,
                       boolean bias, boolean aligned) {}

    /**
     * Whether cuDNN's graphs may take this view: its tensors are declared 16-byte aligned, and its
     * kernels move 16 bytes at a time, so a channel slice must also have a pixel stride and a width
     * that are multiples of 16 bytes (a dense tensor of any width is fine). Otherwise the legacy
     * API runs it on a packed copy. Seen on the H100: a fused graph writing 4 fp16 channels after
     * the 64 it read, in one 68-channel buffer (esrgan-slim's dense blocks), wrote wrong values,
     * 29 LSB off UpscalerJS's output; the guarded run is within 1 LSB.
     */
    static boolean aligned(Tensor t) {
        int b = t.precision.bytes;
        return (at(t) & 15) == 0 && (t.dense() || (t.stride * b) % 16 == 0 && (t.c * b) % 16 == 0);
    }

    /** Element address of a view's first channel. */
    static long at(Tensor t) {
        return t == null ? 0L : t.device.address() + (long) t.offset * t.precision.bytes;
    }

    /** cuDNN's name for the storage type. */
    static int dataType(Precision precision) {
        return switch (precision) {
            case F32 -> Cudnn.DATA_FLOAT;
            case F16 -> Cudnn.DATA_HALF;
            case BF16 -> Cudnn.DATA_BFLOAT16;
        };
    }
}
