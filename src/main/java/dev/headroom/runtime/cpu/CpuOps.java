package dev.headroom.runtime.cpu;

import dev.headroom.core.graph.Act;
import dev.headroom.core.graph.ChannelOrder;
import dev.headroom.core.graph.Op;
import dev.headroom.runtime.Ops;
import dev.headroom.runtime.Tensor;
import java.util.stream.IntStream;

/**
 * The CPU backend: fp32 NHWC on the Java heap, every op spread over the cores by output row.
 * Convolution is {@link CpuConv}; the memory-bound ops are plain loops over a pixel's channels,
 * which the JIT vectorises.
 */
public final class CpuOps implements Ops {

    @Override
    public ConvWeights prepareConv(Op.Conv2d op, float[] kernel, float[] bias, float[] slope) {
        return CpuConv.prepare(op, kernel, bias, slope);
    }

    @Override
    public void conv2d(Tensor in, ConvWeights w, Tensor residual, Tensor out) {
        CpuConv.run(in, (CpuConv.Prepared) w, residual, out);
    }

    /** Calls {@code body(b, y)} for every output row, in parallel. */
    private interface RowBody {
        void row(int b, int y);
    }

    private static void rows(Tensor out, RowBody body) {
        IntStream.range(0, out.n * out.h).parallel().forEach(r -> body.row(r / out.h, r % out.h));
    }

    @Override
    public void activation(Tensor in, Act act, float[] slope, Tensor out) {
        int c = out.c;
        rows(out, (b, y) -> {
            for (int x = 0; x < out.w; x++) {
                int i = in.index(b, y, x), o = out.index(b, y, x);
                switch (act.kind()) {
                    case NONE -> System.arraycopy(in.data, i, out.data, o, c);
                    case RELU -> { for (int ch = 0; ch < c; ch++) out.data[o + ch] = Math.max(in.data[i + ch], 0f); }
                    case LEAKY_RELU -> {
                        float s = act.slope();
                        for (int ch = 0; ch < c; ch++) { float v = in.data[i + ch]; out.data[o + ch] = v >= 0 ? v : v * s; }
                    }
                    case PRELU -> {
                        for (int ch = 0; ch < c; ch++) { float v = in.data[i + ch]; out.data[o + ch] = v >= 0 ? v : v * slope[ch]; }
                    }
                }
            }
        });
    }

    @Override
    public void add(Tensor[] ins, Tensor out) {
        int c = out.c;
        rows(out, (b, y) -> {
            for (int x = 0; x < out.w; x++) {
                int o = out.index(b, y, x);
                Tensor first = ins[0];
                int i0 = first.index(b, y, x);
                for (int ch = 0; ch < c; ch++) out.data[o + ch] = first.data[i0 + ch];
                for (int k = 1; k < ins.length; k++) {
                    Tensor t = ins[k];
                    int ik = t.index(b, y, x);
                    for (int ch = 0; ch < c; ch++) out.data[o + ch] += t.data[ik + ch];
                }
            }
        });
    }

    @Override
    public void scale(Tensor in, float factor, Tensor out) {
        int c = out.c;
        rows(out, (b, y) -> {
            for (int x = 0; x < out.w; x++) {
                int i = in.index(b, y, x), o = out.index(b, y, x);
                for (int ch = 0; ch < c; ch++) out.data[o + ch] = factor * in.data[i + ch];
            }
        });
    }

    @Override
    public void upsampleNearest(Tensor in, int r, Tensor out) {
        int c = out.c;
        rows(out, (b, y) -> {
            for (int x = 0; x < out.w; x++) System.arraycopy(in.data, in.index(b, y / r, x / r), out.data, out.index(b, y, x), c);
        });
    }

    @Override
    public void pixelShuffle(Tensor in, int r, ChannelOrder order, Tensor out) {
        int c = out.c;
        rows(out, (b, y) -> {
            int i = y % r;
            for (int x = 0; x < out.w; x++) {
                int j = x % r;
                int src = in.index(b, y / r, x / r), dst = out.index(b, y, x);
                if (order == ChannelOrder.TF) {
                    // DCR: the c output channels are contiguous in the input
                    System.arraycopy(in.data, src + (i * r + j) * c, out.data, dst, c);
                } else {
                    for (int ch = 0; ch < c; ch++) out.data[dst + ch] = in.data[src + ch * r * r + i * r + j];
                }
            }
        });
    }

    @Override
    public void pixelUnshuffle(Tensor in, int r, ChannelOrder order, Tensor out) {
        int c = in.c;
        rows(out, (b, y) -> {
            for (int x = 0; x < out.w; x++) {
                int dst = out.index(b, y, x);
                for (int i = 0; i < r; i++)
                    for (int j = 0; j < r; j++) {
                        int src = in.index(b, y * r + i, x * r + j);
                        for (int ch = 0; ch < c; ch++) out.data[dst + order.sourceChannel(ch, i, j, r, c)] = in.data[src + ch];
                    }
            }
        });
    }

    @Override
    public void copy(Tensor in, Tensor out) {
        rows(out, (b, y) -> {
            for (int x = 0; x < out.w; x++) System.arraycopy(in.data, in.index(b, y, x), out.data, out.index(b, y, x), out.c);
        });
    }
}
