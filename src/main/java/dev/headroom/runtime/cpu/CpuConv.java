package dev.headroom.runtime.cpu;

import dev.headroom.core.Precision;
import dev.headroom.core.graph.Act;
import dev.headroom.core.graph.Op;
import dev.headroom.core.graph.Padding;
import dev.headroom.runtime.Ops;
import dev.headroom.runtime.Tensor;
import java.util.stream.IntStream;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Direct NHWC convolution with the Vector API.
 *
 * <p>The input is first copied into a zero-bordered dense buffer, so the inner loop has no bounds
 * checks and reads channel slices of a concatenation buffer like any other input. The kernel is
 * repacked to (kh*kw*cin, coPad) with cout padded to the vector length. The micro-kernel keeps a
 * 4-pixel by 2-vector block of outputs in registers (8 accumulators): for every (ky, kx, ci) it
 * loads two weight vectors and broadcasts four input values, 8 FMAs for 6 loads. Rows are spread
 * over the cores. Bias and the activation are applied in the epilogue, before the only store; a
 * scaled residual is added to each finished row while it is still in cache, outside the vector
 * epilogue, so that method stays small enough for the JIT to inline (a vector passed to a method
 * that is not inlined is boxed on the heap).
 */
final class CpuConv {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int VL = S.length();
    private static final int PX = 4;

    record Prepared(Op.Conv2d op, float[] w, float[] bias, float[] slope, int coPad) implements Ops.ConvWeights {}

    /**
     * A kernel kept in its stored 16 bits (fp16 or bf16), in {@link Prepared}'s padded layout:
     * half the host memory of fp32; widened for each convolution call ({@link #widen}), a layer at
     * a time, which costs one pass over the kernel against the call's pixels-times-kernel work.
     */
    record Half(Op.Conv2d op, short[] w, Precision type, float[] bias, float[] slope, int coPad) {
        Prepared widen() {
            float[] f = new float[w.length];
            if (type == Precision.F16) {
                for (int i = 0; i < w.length; i++) f[i] = Float.float16ToFloat(w[i]);
            } else {
                for (int i = 0; i < w.length; i++) f[i] = Float.intBitsToFloat((w[i] & 0xffff) << 16);
            }
            return new Prepared(op, f, bias, slope, coPad);
        }
    }

    /** The kernel (kh*kw*cin, cout) padded to (kh*kw*cin, coPad), as {@link #prepare} lays it out. */
    static float[] pad(Op.Conv2d op, float[] kernel, int coPad) {
        int cout = op.cout(), rows = op.kh() * op.kw() * op.cin();
        float[] w = new float[rows * coPad];
        for (int r = 0; r < rows; r++) System.arraycopy(kernel, r * cout, w, r * coPad, cout);
        return w;
    }

    /** {@link #prepare} for a 16-bit kernel (kh, kw, cin, cout) that stays 16-bit. */
    static Half prepareHalf(Op.Conv2d op, short[] kernel, Precision type, float[] bias, float[] slope) {
        int cout = op.cout();
        int coPad = (cout + VL - 1) / VL * VL;
        int rows = op.kh() * op.kw() * op.cin();
        if (kernel.length != rows * cout) {
            throw new IllegalArgumentException("conv " + op.weight() + ": kernel has " + kernel.length + " values, expected " + rows * cout);
        }
        short[] w = new short[rows * coPad];
        for (int r = 0; r < rows; r++) System.arraycopy(kernel, r * cout, w, r * coPad, cout);
        Prepared p = prepare(op, new float[rows * cout], bias, slope);   // bias and slopes padded the same way
        return new Half(op, w, type, p.bias(), p.slope(), coPad);
    }

    private CpuConv() {}

    static Prepared prepare(Op.Conv2d op, float[] kernel, float[] bias, float[] slope) {
        int cout = op.cout();
        int coPad = (cout + VL - 1) / VL * VL;
        int rows = op.kh() * op.kw() * op.cin();
        if (kernel.length != rows * cout) {
            throw new IllegalArgumentException("conv " + op.weight() + ": kernel has " + kernel.length + " values, expected " + rows * cout);
        }
        float[] w = new float[rows * coPad];
        for (int r = 0; r < rows; r++) System.arraycopy(kernel, r * cout, w, r * coPad, cout);
        float[] b = new float[coPad];
        if (bias != null) System.arraycopy(bias, 0, b, 0, cout);
        float[] s = new float[coPad];
        if (slope != null) System.arraycopy(slope, 0, s, 0, cout);
        return new Prepared(op, w, b, s, coPad);
    }

    /** The zero-padded input a convolution reads: (N, hp, wp, cin) elements. */
    static long paddedElements(Tensor in, Prepared p, Tensor out) {
        return (long) in.n * (out.h + p.op.kh() - 1) * (out.w + p.op.kw() - 1) * p.op.cin();
    }

    /** @param padded a workspace of {@link #paddedElements} values from element {@code base}, zeroed here */
    static void run(Tensor in, Prepared p, Tensor residual, Tensor out, float[] padded, int base) {
        Op.Conv2d op = p.op;
        int kh = op.kh(), kw = op.kw(), cin = op.cin();
        int padY = op.padding() == Padding.SAME ? (kh - 1) / 2 : 0;
        int padX = op.padding() == Padding.SAME ? (kw - 1) / 2 : 0;
        int hp = out.h + kh - 1, wp = out.w + kw - 1;
        // padded is (N, hp, wp, cin), zero outside the input
        java.util.Arrays.fill(padded, base, Math.toIntExact(base + (long) in.n * hp * wp * cin), 0f);
        IntStream.range(0, in.n * in.h).parallel().forEach(row -> {
            int b = row / in.h, y = row % in.h;
            int py = y + padY;
            if (py < 0 || py >= hp) return;
            for (int x = 0; x < in.w; x++) {
                int px = x + padX;
                if (px < 0 || px >= wp) continue;
                System.arraycopy(in.data, in.index(b, y, x), padded, base + ((b * hp + py) * wp + px) * cin, cin);
            }
        });
        float scale = p.op.residualScale();
        IntStream.range(0, out.n * out.h).parallel().forEach(row -> {
            int b = row / out.h, y = row % out.h;
            row(padded, base, hp, wp, b, y, p, out);
            if (residual != null) addResidual(out, residual, scale, b, y);
        });
    }

    /** out = scale * out + residual over one output row, in the reference's order of rounding. */
    private static void addResidual(Tensor out, Tensor residual, float scale, int b, int y) {
        int c = out.c;
        for (int x = 0; x < out.w; x++) {
            int o = out.index(b, y, x), r = residual.index(b, y, x);
            for (int ch = 0; ch < c; ch++) out.data[o + ch] = scale * out.data[o + ch] + residual.data[r + ch];
        }
    }

    private static void row(float[] in, int base, int hp, int wp, int b, int y, Prepared p, Tensor out) {
        int w = out.w, cout = p.op.cout(), coPad = p.coPad;
        int x = 0;
        for (; x + PX <= w; x += PX) {
            int cb = 0;
            for (; cb + 2 * VL <= coPad; cb += 2 * VL) block4x2(in, base, hp, wp, b, y, x, cb, p, out, cout);
            for (; cb < coPad; cb += VL) block1(in, base, hp, wp, b, y, x, PX, cb, p, out, cout);
        }
        for (; x < w; x++) {
            for (int cb = 0; cb < coPad; cb += VL) block1(in, base, hp, wp, b, y, x, 1, cb, p, out, cout);
        }
    }

    /** Outputs (y, x..x+3) x channels [cb, cb + 2*VL). */
    private static void block4x2(float[] in, int base, int hp, int wp, int b, int y, int x, int cb, Prepared p, Tensor out, int cout) {
        int kh = p.op.kh(), kw = p.op.kw(), cin = p.op.cin(), coPad = p.coPad;
        float[] w = p.w;
        FloatVector a00 = FloatVector.fromArray(S, p.bias, cb), a01 = FloatVector.fromArray(S, p.bias, cb + VL);
        FloatVector a10 = a00, a11 = a01, a20 = a00, a21 = a01, a30 = a00, a31 = a01;
        for (int ky = 0; ky < kh; ky++) {
            for (int kx = 0; kx < kw; kx++) {
                int ib = base + ((b * hp + y + ky) * wp + x + kx) * cin;
                int wb = (ky * kw + kx) * cin * coPad + cb;
                for (int ci = 0; ci < cin; ci++) {
                    FloatVector w0 = FloatVector.fromArray(S, w, wb);
                    FloatVector w1 = FloatVector.fromArray(S, w, wb + VL);
                    wb += coPad;
                    FloatVector v0 = FloatVector.broadcast(S, in[ib + ci]);
                    FloatVector v1 = FloatVector.broadcast(S, in[ib + cin + ci]);
                    FloatVector v2 = FloatVector.broadcast(S, in[ib + 2 * cin + ci]);
                    FloatVector v3 = FloatVector.broadcast(S, in[ib + 3 * cin + ci]);
                    a00 = v0.fma(w0, a00);
                    a01 = v0.fma(w1, a01);
                    a10 = v1.fma(w0, a10);
                    a11 = v1.fma(w1, a11);
                    a20 = v2.fma(w0, a20);
                    a21 = v2.fma(w1, a21);
                    a30 = v3.fma(w0, a30);
                    a31 = v3.fma(w1, a31);
                }
            }
        }
        Act act = p.op.act();
        int o = out.index(b, y, x);
        int ps = out.stride;
        store(a00, act, p.slope, cb, cout, out.data, o);
        store(a01, act, p.slope, cb + VL, cout, out.data, o);
        store(a10, act, p.slope, cb, cout, out.data, o + ps);
        store(a11, act, p.slope, cb + VL, cout, out.data, o + ps);
        store(a20, act, p.slope, cb, cout, out.data, o + 2 * ps);
        store(a21, act, p.slope, cb + VL, cout, out.data, o + 2 * ps);
        store(a30, act, p.slope, cb, cout, out.data, o + 3 * ps);
        store(a31, act, p.slope, cb + VL, cout, out.data, o + 3 * ps);
    }

    /** Outputs (y, x..x+count-1) x channels [cb, cb + VL), one pixel at a time. */
    private static void block1(float[] in, int base, int hp, int wp, int b, int y, int x, int count, int cb, Prepared p, Tensor out, int cout) {
        int kh = p.op.kh(), kw = p.op.kw(), cin = p.op.cin(), coPad = p.coPad;
        for (int px = x; px < x + count; px++) {
            FloatVector acc = FloatVector.fromArray(S, p.bias, cb);
            for (int ky = 0; ky < kh; ky++) {
                for (int kx = 0; kx < kw; kx++) {
                    int ib = base + ((b * hp + y + ky) * wp + px + kx) * cin;
                    int wb = (ky * kw + kx) * cin * coPad + cb;
                    for (int ci = 0; ci < cin; ci++, wb += coPad) {
                        acc = FloatVector.broadcast(S, in[ib + ci]).fma(FloatVector.fromArray(S, p.w, wb), acc);
                    }
                }
            }
            store(acc, p.op.act(), p.slope, cb, cout, out.data, out.index(b, y, px));
        }
    }

    private static void store(FloatVector v, Act act, float[] slope, int cb, int cout, float[] dst, int pixel) {
        v = activate(v, act, slope, cb);
        if (cb + VL <= cout) {
            v.intoArray(dst, pixel + cb);
        } else if (cb < cout) {
            VectorMask<Float> m = S.indexInRange(cb, cout);
            v.intoArray(dst, pixel + cb, m);
        }
    }

    static FloatVector activate(FloatVector v, Act act, float[] slope, int cb) {
        return switch (act.kind()) {
            case NONE -> v;
            case RELU -> v.max(0f);
            case LEAKY_RELU -> v.blend(v.mul(act.slope()), v.compare(VectorOperators.LT, 0f));
            case PRELU -> v.blend(v.mul(FloatVector.fromArray(S, slope, cb)), v.compare(VectorOperators.LT, 0f));
            case SILU -> v.div(v.neg().lanewise(VectorOperators.EXP).add(1f));
        };
    }
}
