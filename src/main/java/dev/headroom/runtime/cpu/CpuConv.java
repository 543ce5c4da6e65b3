package dev.headroom.runtime.cpu;

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
 * over the cores. Bias, the activation and a scaled residual are applied in the epilogue, before
 * the only store.
 */
final class CpuConv {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int VL = S.length();
    private static final int PX = 4;

    record Prepared(Op.Conv2d op, float[] w, float[] bias, float[] slope, int coPad) implements Ops.ConvWeights {}

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

    static void run(Tensor in, Prepared p, Tensor residual, Tensor out) {
        Op.Conv2d op = p.op;
        int kh = op.kh(), kw = op.kw(), cin = op.cin();
        int padY = op.padding() == Padding.SAME ? (kh - 1) / 2 : 0;
        int padX = op.padding() == Padding.SAME ? (kw - 1) / 2 : 0;
        int hp = out.h + kh - 1, wp = out.w + kw - 1;
        // padded is (N, hp, wp, cin), zero outside the input
        float[] padded = new float[Math.toIntExact((long) in.n * hp * wp * cin)];
        IntStream.range(0, in.n * in.h).parallel().forEach(row -> {
            int b = row / in.h, y = row % in.h;
            int py = y + padY;
            if (py < 0 || py >= hp) return;
            for (int x = 0; x < in.w; x++) {
                int px = x + padX;
                if (px < 0 || px >= wp) continue;
                System.arraycopy(in.data, in.index(b, y, x), padded, ((b * hp + py) * wp + px) * cin, cin);
            }
        });
        Epilogue e = new Epilogue(p.op.act(), p.slope, residual, p.op.residualScale(), out);
        IntStream.range(0, out.n * out.h).parallel().forEach(row ->
                row(padded, hp, wp, row / out.h, row % out.h, p, e));
    }

    /** Where and how results are stored: activation, optional scaled residual, output view. */
    record Epilogue(Act act, float[] slope, Tensor residual, float residualScale, Tensor out) {}

    private static void row(float[] in, int hp, int wp, int b, int y, Prepared p, Epilogue e) {
        Tensor out = e.out;
        int w = out.w, cout = p.op.cout(), coPad = p.coPad;
        int x = 0;
        for (; x + PX <= w; x += PX) {
            int cb = 0;
            for (; cb + 2 * VL <= coPad; cb += 2 * VL) block4x2(in, hp, wp, b, y, x, cb, p, e, cout);
            for (; cb < coPad; cb += VL) block1(in, hp, wp, b, y, x, PX, cb, p, e, cout);
        }
        for (; x < w; x++) {
            for (int cb = 0; cb < coPad; cb += VL) block1(in, hp, wp, b, y, x, 1, cb, p, e, cout);
        }
    }

    /** Outputs (y, x..x+3) x channels [cb, cb + 2*VL). */
    private static void block4x2(float[] in, int hp, int wp, int b, int y, int x, int cb, Prepared p, Epilogue e, int cout) {
        int kh = p.op.kh(), kw = p.op.kw(), cin = p.op.cin(), coPad = p.coPad;
        float[] w = p.w;
        FloatVector a00 = FloatVector.fromArray(S, p.bias, cb), a01 = FloatVector.fromArray(S, p.bias, cb + VL);
        FloatVector a10 = a00, a11 = a01, a20 = a00, a21 = a01, a30 = a00, a31 = a01;
        for (int ky = 0; ky < kh; ky++) {
            for (int kx = 0; kx < kw; kx++) {
                int ib = ((b * hp + y + ky) * wp + x + kx) * cin;
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
        store(a00, e, cb, cout, b, y, x);
        store(a01, e, cb + VL, cout, b, y, x);
        store(a10, e, cb, cout, b, y, x + 1);
        store(a11, e, cb + VL, cout, b, y, x + 1);
        store(a20, e, cb, cout, b, y, x + 2);
        store(a21, e, cb + VL, cout, b, y, x + 2);
        store(a30, e, cb, cout, b, y, x + 3);
        store(a31, e, cb + VL, cout, b, y, x + 3);
    }

    /** Outputs (y, x..x+count-1) x channels [cb, cb + VL), one pixel at a time. */
    private static void block1(float[] in, int hp, int wp, int b, int y, int x, int count, int cb, Prepared p, Epilogue e, int cout) {
        int kh = p.op.kh(), kw = p.op.kw(), cin = p.op.cin(), coPad = p.coPad;
        for (int px = x; px < x + count; px++) {
            FloatVector acc = FloatVector.fromArray(S, p.bias, cb);
            for (int ky = 0; ky < kh; ky++) {
                for (int kx = 0; kx < kw; kx++) {
                    int ib = ((b * hp + y + ky) * wp + px + kx) * cin;
                    int wb = (ky * kw + kx) * cin * coPad + cb;
                    for (int ci = 0; ci < cin; ci++, wb += coPad) {
                        acc = FloatVector.broadcast(S, in[ib + ci]).fma(FloatVector.fromArray(S, p.w, wb), acc);
                    }
                }
            }
            store(acc, e, cb, cout, b, y, px);
        }
    }

    /** Output pixel (b, y, x), channels [cb, cb + VL): activation, scaled residual, store (masked past cout). */
    private static void store(FloatVector v, Epilogue e, int cb, int cout, int b, int y, int x) {
        if (cb >= cout) return;
        v = activate(v, e.act, e.slope, cb);
        boolean full = cb + VL <= cout;
        VectorMask<Float> m = full ? null : S.indexInRange(cb, cout);
        if (e.residual != null) {
            int r = e.residual.index(b, y, x) + cb;
            FloatVector res = full ? FloatVector.fromArray(S, e.residual.data, r) : FloatVector.fromArray(S, e.residual.data, r, m);
            v = v.mul(e.residualScale).add(res);   // two roundings, as the reference computes it
        }
        int o = e.out.index(b, y, x) + cb;
        if (full) v.intoArray(e.out.data, o);
        else v.intoArray(e.out.data, o, m);
    }

    static FloatVector activate(FloatVector v, Act act, float[] slope, int cb) {
        return switch (act.kind()) {
            case NONE -> v;
            case RELU -> v.max(0f);
            case LEAKY_RELU -> v.blend(v.mul(act.slope()), v.compare(VectorOperators.LT, 0f));
            case PRELU -> v.blend(v.mul(FloatVector.fromArray(S, slope, cb)), v.compare(VectorOperators.LT, 0f));
        };
    }
}
