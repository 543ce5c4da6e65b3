package dev.headroom.runtime.cpu;

import dev.headroom.core.graph.Act;
import dev.headroom.core.graph.Op;
import dev.headroom.runtime.Tensor;
import java.util.stream.IntStream;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The CPU backend's diffusion-VAE ops: GroupNorm (statistics, then normalisation), the strided
 * convolution of the encoder's downsampling, and single-head attention. Work is spread over the
 * cores by output row (attention: by query position).
 */
final class CpuVaeOps {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    private CpuVaeOps() {}

    /** Per-row fp32 sums, then the rows added in order in double (see {@code Ops.groupNormStats}). */
    static void groupNormStats(Tensor in, int groups, double[] acc) {
        int per = in.c / groups, rows = in.n * in.h;
        float[][] partial = new float[rows][];
        IntStream.range(0, rows).parallel().forEach(r -> {
            int b = r / in.h, y = r % in.h;
            float[] s = new float[groups * 2];
            for (int x = 0; x < in.w; x++) {
                int i = in.index(b, y, x);
                for (int g = 0; g < groups; g++) {
                    float sum = 0, sq = 0;
                    for (int ch = g * per; ch < (g + 1) * per; ch++) {
                        float v = in.data[i + ch];
                        sum += v;
                        sq += v * v;
                    }
                    s[2 * g] += sum;
                    s[2 * g + 1] += sq;
                }
            }
            partial[r] = s;
        });
        for (int r = 0; r < rows; r++) {
            int b = r / in.h;
            for (int g = 0; g < groups; g++) {
                int at = (b * groups + g) * 3;
                acc[at] += (double) in.w * per;
                acc[at + 1] += partial[r][2 * g];
                acc[at + 2] += partial[r][2 * g + 1];
            }
        }
    }

    static void groupNormApply(Tensor in, Op.GroupNorm op, float[] meanRstd, float[] gamma, float[] beta, Tensor out) {
        int per = in.c / op.groups(), c = in.c;
        IntStream.range(0, out.n * out.h).parallel().forEach(r -> {
            int b = r / out.h, y = r % out.h;
            // per channel: y = x * a + d with a = rstd * gamma, d = beta - mean * a
            float[] a = new float[c], d = new float[c];
            for (int ch = 0; ch < c; ch++) {
                int g = (b * op.groups() + ch / per) * 2;
                a[ch] = meanRstd[g + 1] * gamma[ch];
                d[ch] = beta[ch] - meanRstd[g] * a[ch];
            }
            for (int x = 0; x < out.w; x++) {
                int i = in.index(b, y, x), o = out.index(b, y, x);
                for (int ch = 0; ch < c; ch++) {
                    float v = in.data[i + ch] * a[ch] + d[ch];
                    out.data[o + ch] = op.silu() ? v / (1f + (float) Math.exp(-v)) : v;
                }
            }
        });
    }

    static void stridedConv(Tensor in, Op.StridedConv op, float[] kernel, float[] bias, Tensor out) {
        int k = op.k(), cin = op.cin(), cout = op.cout(), s = op.stride();
        IntStream.range(0, out.n * out.h).parallel().forEach(r -> {
            int b = r / out.h, y = r % out.h;
            float[] acc = new float[cout];
            for (int x = 0; x < out.w; x++) {
                if (bias != null) System.arraycopy(bias, 0, acc, 0, cout);
                else java.util.Arrays.fill(acc, 0f);
                for (int ky = 0; ky < k; ky++) {
                    int iy = y * s + ky - op.padTop();
                    if (iy < 0 || iy >= in.h) continue;
                    for (int kx = 0; kx < k; kx++) {
                        int ix = x * s + kx - op.padLeft();
                        if (ix < 0 || ix >= in.w) continue;
                        int src = in.index(b, iy, ix);
                        for (int i = 0; i < cin; i++) {
                            float v = in.data[src + i];
                            int wb = ((ky * k + kx) * cin + i) * cout;
                            for (int o = 0; o < cout; o++) acc[o] += v * kernel[wb + o];
                        }
                    }
                }
                System.arraycopy(acc, 0, out.data, out.index(b, y, x), cout);
            }
        });
    }

    /**
     * One query position at a time, in parallel: its scores against every key (one row of
     * h*w floats per worker, never the whole matrix), softmax in fp32, then the weighted sum of
     * the values.
     */
    static void attention(Tensor q, Tensor k, Tensor v, float scale, Tensor out) {
        int positions = k.h * k.w, c = q.c, cv = v.c;
        ThreadLocal<float[]> scores = ThreadLocal.withInitial(() -> new float[positions]);
        IntStream.range(0, q.n * q.h * q.w).parallel().forEach(p -> {
            int b = p / (q.h * q.w), py = p % (q.h * q.w) / q.w, px = p % q.w;
            float[] s = scores.get();
            float[] acc = new float[cv];
            int qi = q.index(b, py, px);
            float max = Float.NEGATIVE_INFINITY;
            for (int j = 0; j < positions; j++) {
                s[j] = dot(q.data, qi, k.data, k.index(b, j / k.w, j % k.w), c) * scale;
                max = Math.max(max, s[j]);
            }
            float sum = 0;
            for (int j = 0; j < positions; j++) sum += s[j] = (float) Math.exp(s[j] - max);
            for (int j = 0; j < positions; j++) {
                float w = s[j];
                int vi = v.index(b, j / v.w, j % v.w);
                for (int ch = 0; ch < cv; ch++) acc[ch] += w * v.data[vi + ch];
            }
            int o = out.index(b, py, px);
            float inv = 1f / sum;
            for (int ch = 0; ch < cv; ch++) out.data[o + ch] = acc[ch] * inv;
        });
    }

    private static float dot(float[] a, int ai, float[] b, int bi, int n) {
        FloatVector acc = FloatVector.zero(S);
        int i = 0;
        for (; i + S.length() <= n; i += S.length()) {
            acc = FloatVector.fromArray(S, a, ai + i).fma(FloatVector.fromArray(S, b, bi + i), acc);
        }
        // lanes added in a fixed order: reduceLanes' order differs between the interpreter and C2,
        // and a result that changes with the JIT's progress would make runs differ
        float[] lanes = new float[S.length()];
        acc.intoArray(lanes, 0);
        float sum = 0;
        for (float l : lanes) sum += l;
        for (; i < n; i++) sum += a[ai + i] * b[bi + i];
        return sum;
    }

    /** SiLU for the vector epilogue and the activation op. */
    static float silu(float x) {
        return Act.SILU.apply(x, 0);
    }
}
