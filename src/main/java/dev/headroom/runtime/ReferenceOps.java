package dev.headroom.runtime;

import dev.headroom.core.graph.Act;
import dev.headroom.core.graph.ChannelOrder;
import dev.headroom.core.graph.Op;
import dev.headroom.core.graph.Padding;

/**
 * The readable reference of every op: plain loops, double accumulation, no tricks. Fast backends
 * are tested against it; it is also a complete (slow) backend on its own.
 */
public final class ReferenceOps implements Ops {

    record Conv(Op.Conv2d op, float[] kernel, float[] bias, float[] slope) implements ConvWeights {}

    @Override
    public ConvWeights prepareConv(Op.Conv2d op, float[] kernel, float[] bias, float[] slope) {
        return new Conv(op, kernel, bias, slope);
    }

    @Override
    public void conv2d(Tensor in, ConvWeights weights, Tensor residual, Tensor out) {
        Conv cw = (Conv) weights;
        Op.Conv2d op = cw.op;
        int kh = op.kh(), kw = op.kw(), cin = op.cin(), cout = op.cout();
        // SAME pads (k-1)/2 before and the rest after, as TensorFlow does; for odd k PyTorch's k//2 agrees.
        int padY = op.padding() == Padding.SAME ? (kh - 1) / 2 : 0;
        int padX = op.padding() == Padding.SAME ? (kw - 1) / 2 : 0;
        for (int b = 0; b < out.n; b++)
            for (int y = 0; y < out.h; y++)
                for (int x = 0; x < out.w; x++)
                    for (int o = 0; o < cout; o++) {
                        double acc = cw.bias == null ? 0 : cw.bias[o];
                        for (int ky = 0; ky < kh; ky++) {
                            int iy = y + ky - padY;
                            if (iy < 0 || iy >= in.h) continue;
                            for (int kx = 0; kx < kw; kx++) {
                                int ix = x + kx - padX;
                                if (ix < 0 || ix >= in.w) continue;
                                for (int i = 0; i < cin; i++) {
                                    acc += (double) in.get(b, iy, ix, i) * cw.kernel[((ky * kw + kx) * cin + i) * cout + o];
                                }
                            }
                        }
                        float v = op.act().apply((float) acc, cw.slope == null ? 0 : cw.slope[o]);
                        if (residual != null) v = op.residualScale() * v + residual.get(b, y, x, o);
                        out.set(b, y, x, o, v);
                    }
    }

    @Override
    public void activation(Tensor in, Act act, float[] slope, Tensor out) {
        forEach(out, (b, y, x, ch) -> out.set(b, y, x, ch, act.apply(in.get(b, y, x, ch), slope == null ? 0 : slope[ch])));
    }

    @Override
    public void add(Tensor[] ins, Tensor out) {
        forEach(out, (b, y, x, ch) -> {
            float s = 0;
            for (Tensor t : ins) s += t.get(b, y, x, ch);
            out.set(b, y, x, ch, s);
        });
    }

    @Override
    public void scale(Tensor in, float factor, Tensor out) {
        forEach(out, (b, y, x, ch) -> out.set(b, y, x, ch, factor * in.get(b, y, x, ch)));
    }

    @Override
    public void upsampleNearest(Tensor in, int r, Tensor out) {
        forEach(out, (b, y, x, ch) -> out.set(b, y, x, ch, in.get(b, y / r, x / r, ch)));
    }

    @Override
    public void pixelShuffle(Tensor in, int r, ChannelOrder order, Tensor out) {
        forEach(out, (b, y, x, ch) ->
                out.set(b, y, x, ch, in.get(b, y / r, x / r, order.sourceChannel(ch, y % r, x % r, r, out.c))));
    }

    @Override
    public void pixelUnshuffle(Tensor in, int r, ChannelOrder order, Tensor out) {
        // the inverse of pixelShuffle: in plays the role of the shuffled (big) tensor
        forEach(in, (b, y, x, ch) ->
                out.set(b, y / r, x / r, order.sourceChannel(ch, y % r, x % r, r, in.c), in.get(b, y, x, ch)));
    }

    @Override
    public void copy(Tensor in, Tensor out) {
        forEach(out, (b, y, x, ch) -> out.set(b, y, x, ch, in.get(b, y, x, ch)));
    }

    @Override
    public void groupNormStats(Tensor in, int groups, double[] acc) {
        int per = in.c / groups;
        forEach(in, (b, y, x, ch) -> {
            double v = in.get(b, y, x, ch);
            int at = (b * groups + ch / per) * 3;
            acc[at] += 1;
            acc[at + 1] += v;
            acc[at + 2] += v * v;
        });
    }

    @Override
    public void groupNormApply(Tensor in, Op.GroupNorm op, float[] meanRstd, float[] gamma, float[] beta, Tensor out) {
        int per = in.c / op.groups();
        forEach(out, (b, y, x, ch) -> {
            int g = (b * op.groups() + ch / per) * 2;
            float v = (in.get(b, y, x, ch) - meanRstd[g]) * meanRstd[g + 1] * gamma[ch] + beta[ch];
            out.set(b, y, x, ch, op.silu() ? Act.SILU.apply(v, 0) : v);
        });
    }

    @Override
    public void stridedConv(Tensor in, Op.StridedConv op, float[] kernel, float[] bias, Tensor out) {
        int k = op.k(), cin = op.cin(), cout = op.cout(), s = op.stride();
        forEach(out, (b, y, x, o) -> {
            double acc = bias == null ? 0 : bias[o];
            for (int ky = 0; ky < k; ky++) {
                int iy = y * s + ky - op.padTop();
                if (iy < 0 || iy >= in.h) continue;
                for (int kx = 0; kx < k; kx++) {
                    int ix = x * s + kx - op.padLeft();
                    if (ix < 0 || ix >= in.w) continue;
                    for (int i = 0; i < cin; i++) acc += (double) in.get(b, iy, ix, i) * kernel[((ky * k + kx) * cin + i) * cout + o];
                }
            }
            out.set(b, y, x, o, (float) acc);
        });
    }

    @Override
    public void attention(Tensor q, Tensor k, Tensor v, float scale, Tensor out) {
        int positions = k.h * k.w, c = q.c;
        double[] score = new double[positions];
        for (int b = 0; b < q.n; b++)
            for (int p = 0; p < q.h * q.w; p++) {
                int py = p / q.w, px = p % q.w;
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < positions; j++) {
                    double dot = 0;
                    for (int ch = 0; ch < c; ch++) dot += (double) q.get(b, py, px, ch) * k.get(b, j / k.w, j % k.w, ch);
                    score[j] = dot * scale;
                    max = Math.max(max, score[j]);
                }
                double sum = 0;
                for (int j = 0; j < positions; j++) sum += score[j] = Math.exp(score[j] - max);
                for (int ch = 0; ch < v.c; ch++) {
                    double acc = 0;
                    for (int j = 0; j < positions; j++) acc += score[j] * v.get(b, j / v.w, j % v.w, ch);
                    out.set(b, py, px, ch, (float) (acc / sum));
                }
            }
    }

    private interface Visit {
        void at(int b, int y, int x, int ch);
    }

    private static void forEach(Tensor t, Visit v) {
        for (int b = 0; b < t.n; b++)
            for (int y = 0; y < t.h; y++)
                for (int x = 0; x < t.w; x++)
                    for (int ch = 0; ch < t.c; ch++) v.at(b, y, x, ch);
    }
}
