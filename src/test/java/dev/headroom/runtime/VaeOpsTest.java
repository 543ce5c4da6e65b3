package dev.headroom.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.headroom.core.graph.Act;
import dev.headroom.core.graph.Op;
import dev.headroom.runtime.cpu.CpuOps;
import dev.headroom.testing.Randoms;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The diffusion-VAE ops of the CPU backend against the reference on fresh random inputs, with
 * channel-slice inputs and outputs. Tolerances (relative, against double sums): GroupNorm 1e-4
 * (fp32 row sums), SiLU 1e-6, strided convolution 1e-4, attention 1e-4 (fp32 scores and sums).
 */
class VaeOpsTest {
    private final CpuOps fast = new CpuOps();
    private final Ops ref = new ReferenceOps();
    private final Random rnd = new Random(Randoms.seed());

    private Tensor random(int n, int h, int w, int c, float mean) {
        boolean slice = rnd.nextBoolean();
        int extra = slice ? 1 + rnd.nextInt(5) : 0;
        Tensor t = Tensor.allocate(n, h, w, c + extra);
        for (int i = 0; i < t.data.length; i++) t.data[i] = mean + (float) rnd.nextGaussian();
        return slice ? t.slice(rnd.nextInt(extra + 1), c) : t;
    }

    private Tensor outLike(int n, int h, int w, int c) {
        boolean slice = rnd.nextBoolean();
        int extra = slice ? 1 + rnd.nextInt(4) : 0;
        Tensor t = Tensor.allocate(n, h, w, c + extra);
        java.util.Arrays.fill(t.data, Float.NaN);
        return slice ? t.slice(extra, c) : t;
    }

    static void assertClose(Tensor want, Tensor got, double tol, String what) {
        float[] a = want.toArray(), b = got.toArray();
        for (int i = 0; i < a.length; i++) {
            double d = Math.abs(a[i] - b[i]);
            if (!(d <= tol * (1 + Math.abs(a[i])))) throw new AssertionError(what + ": element " + i + " is " + b[i] + ", reference " + a[i]);
        }
    }

    @Test
    void groupNormMatchesReference() {
        for (int trial = 0; trial < 30; trial++) {
            int groups = 1 + rnd.nextInt(4), per = 1 + rnd.nextInt(5), c = groups * per;
            int n = 1 + rnd.nextInt(2), h = 1 + rnd.nextInt(9), w = 1 + rnd.nextInt(9);
            Op.GroupNorm op = new Op.GroupNorm("g", "b", groups, 1e-6f, rnd.nextBoolean());
            float[] gamma = Randoms.floats(rnd, c, 1f), beta = Randoms.floats(rnd, c, 1f);
            Tensor in = random(n, h, w, c, (float) rnd.nextGaussian() * 2);
            Tensor want = outLike(n, h, w, c), got = outLike(n, h, w, c);
            ref.groupNorm(in, op, gamma, beta, want);
            fast.groupNorm(in, op, gamma, beta, got);
            assertClose(want, got, 1e-4, "group norm " + groups + "x" + per + " silu " + op.silu() + " " + in);
        }
    }

    /** Statistics gathered band by band equal the whole image's: what makes a tiled decode exact. */
    @Test
    void groupNormStatisticsOfRowBandsEqualTheWholeImage() {
        for (int trial = 0; trial < 20; trial++) {
            int groups = 1 + rnd.nextInt(4), c = groups * (1 + rnd.nextInt(4)), h = 2 + rnd.nextInt(30), w = 1 + rnd.nextInt(9);
            Tensor in = random(1, h, w, c, 3f);
            double[] whole = new double[groups * 3], banded = new double[groups * 3];
            fast.groupNormStats(in, groups, whole);
            for (int y = 0; y < h; ) {
                int to = Math.min(h, y + 1 + rnd.nextInt(7));
                fast.groupNormStats(in.rows(y, to), groups, banded);
                y = to;
            }
            assertArrayEquals(GroupStats.meanRstd(whole, 1e-6f), GroupStats.meanRstd(banded, 1e-6f), "mean and rstd, " + h + " rows");
        }
    }

    @Test
    void siluMatchesReference() {
        Tensor in = random(2, 5, 7, 11, 0f);
        Tensor want = outLike(2, 5, 7, 11), got = outLike(2, 5, 7, 11);
        ref.activation(in, Act.SILU, null, want);
        fast.activation(in, Act.SILU, null, got);
        assertClose(want, got, 1e-6, "silu");
    }

    @Test
    void stridedConvMatchesReference() {
        for (int trial = 0; trial < 20; trial++) {
            int k = 1 + 2 * rnd.nextInt(2), s = 1 + rnd.nextInt(2), cin = 1 + rnd.nextInt(9), cout = 1 + rnd.nextInt(9);
            int h = k + rnd.nextInt(10), w = k + rnd.nextInt(10), n = 1 + rnd.nextInt(2);
            Op.StridedConv op = rnd.nextBoolean()
                    ? new Op.StridedConv("k", "b", k, cin, cout, s, 0, 1, 0, 1)
                    : new Op.StridedConv("k", rnd.nextBoolean() ? "b" : null, k, cin, cout, s, rnd.nextInt(2), rnd.nextInt(2), rnd.nextInt(2), rnd.nextInt(2));
            float[] kernel = Randoms.floats(rnd, k * k * cin * cout, 0.3f), bias = op.bias() == null ? null : Randoms.floats(rnd, cout, 1f);
            Tensor in = random(n, h, w, cin, 0f);
            int oh = op.outHeight(h), ow = op.outWidth(w);
            Tensor want = outLike(n, oh, ow, cout), got = outLike(n, oh, ow, cout);
            ref.stridedConv(in, op, kernel, bias, want);
            fast.stridedConv(in, op, kernel, bias, got);
            assertClose(want, got, 1e-4, "strided conv " + op + " on " + in);
        }
    }

    @Test
    void attentionMatchesReference() {
        for (int trial = 0; trial < 12; trial++) {
            int n = 1 + rnd.nextInt(2), h = 1 + rnd.nextInt(9), w = 1 + rnd.nextInt(9), c = 1 + rnd.nextInt(24);
            Tensor q = random(n, h, w, c, 0f), k = random(n, h, w, c, 0f), v = random(n, h, w, c, 0f);
            Tensor want = outLike(n, h, w, c), got = outLike(n, h, w, c);
            float scale = (float) (1 / Math.sqrt(c)) * (1 + rnd.nextInt(3));
            ref.attention(q, k, v, scale, want);
            fast.attention(q, k, v, scale, got);
            assertClose(want, got, 1e-4, "attention " + n + "x" + h + "x" + w + "x" + c);
        }
    }
}
