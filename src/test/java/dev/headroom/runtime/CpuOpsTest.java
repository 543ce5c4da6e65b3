package dev.headroom.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.headroom.core.graph.Act;
import dev.headroom.core.graph.ChannelOrder;
import dev.headroom.core.graph.Op;
import dev.headroom.core.graph.Padding;
import dev.headroom.runtime.cpu.CpuOps;
import dev.headroom.testing.Randoms;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Every CPU op against the reference on fresh random inputs, including channel-slice inputs and
 * outputs. Tolerance per op: convolution 1e-4 relative (fp32 sums in another order); data movement
 * exact; add and scale exact (the same float operations).
 */
class CpuOpsTest {
    private final Ops fast = new CpuOps();
    private final Ops ref = new ReferenceOps();
    private final Random rnd = new Random(Randoms.seed());

    /** A random tensor, sometimes a channel slice of a wider buffer. */
    private Tensor random(int n, int h, int w, int c) {
        boolean slice = rnd.nextBoolean();
        int extra = slice ? 1 + rnd.nextInt(5) : 0;
        Tensor t = Tensor.allocate(n, h, w, c + extra);
        for (int i = 0; i < t.data.length; i++) t.data[i] = (float) rnd.nextGaussian();
        return slice ? t.slice(rnd.nextInt(extra + 1), c) : t;
    }

    private Tensor outLike(int n, int h, int w, int c) {
        boolean slice = rnd.nextBoolean();
        int extra = slice ? 1 + rnd.nextInt(4) : 0;
        Tensor t = Tensor.allocate(n, h, w, c + extra);
        java.util.Arrays.fill(t.data, Float.NaN);   // a missed write shows as NaN
        return slice ? t.slice(extra, c) : t;
    }

    private static void assertClose(Tensor want, Tensor got, double tol, String what) {
        float[] a = want.toArray(), b = got.toArray();
        assertEquals(a.length, b.length, what);
        for (int i = 0; i < a.length; i++) {
            double d = Math.abs(a[i] - b[i]);
            if (!(d <= tol * (1 + Math.abs(a[i])))) {
                throw new AssertionError(what + ": element " + i + " is " + b[i] + ", reference " + a[i]);
            }
        }
    }

    private Act randomAct(int cout) {
        return switch (rnd.nextInt(4)) {
            case 0 -> Act.NONE;
            case 1 -> Act.RELU;
            case 2 -> Act.leakyRelu(0.2f);
            default -> Act.prelu("slope");
        };
    }

    @Test
    void conv2dMatchesReference() {
        int[] ks = {1, 3, 5};
        int[] cins = {1, 3, 7, 16, 37, 64};
        int[] couts = {1, 3, 4, 8, 12, 17, 32, 64};
        for (int trial = 0; trial < 60; trial++) {
            int k = ks[rnd.nextInt(ks.length)];
            int kw = rnd.nextInt(4) == 0 ? ks[rnd.nextInt(ks.length)] : k;
            int cin = cins[rnd.nextInt(cins.length)], cout = couts[rnd.nextInt(couts.length)];
            int n = 1 + rnd.nextInt(2), h = 1 + rnd.nextInt(11), w = 1 + rnd.nextInt(13);
            Padding pad = rnd.nextInt(3) == 0 && h >= k && w >= kw ? Padding.VALID : Padding.SAME;
            Act act = randomAct(cout);
            float residualScale = rnd.nextBoolean() ? 0f : (float) rnd.nextGaussian();
            Op.Conv2d op = new Op.Conv2d("k", rnd.nextBoolean() ? "b" : null, k, kw, cin, cout, pad, act, residualScale);
            float[] kernel = Randoms.floats(rnd, k * kw * cin * cout, 0.3f);
            float[] bias = op.bias() == null ? null : Randoms.floats(rnd, cout, 1f);
            float[] slope = act.kind() == Act.Kind.PRELU ? Randoms.floats(rnd, cout, 0.3f) : null;
            Tensor in = random(n, h, w, cin);
            int oh = op.outHeight(h), ow = op.outWidth(w);
            Tensor want = outLike(n, oh, ow, cout), got = outLike(n, oh, ow, cout);
            Tensor residual = op.hasResidual() ? random(n, oh, ow, cout) : null;
            ref.conv2d(in, ref.prepareConv(op, kernel, bias, slope), residual, want);
            fast.conv2d(in, fast.prepareConv(op, kernel, bias, slope), residual, got);
            assertClose(want, got, 1e-4, "conv " + k + "x" + kw + " " + cin + "->" + cout + " " + pad + " " + act.kind()
                    + (op.hasResidual() ? " residual x" + residualScale : "") + " on " + in);
        }
    }

    @Test
    void elementwiseOpsMatchReference() {
        for (int trial = 0; trial < 30; trial++) {
            int n = 1 + rnd.nextInt(2), h = 1 + rnd.nextInt(9), w = 1 + rnd.nextInt(9), c = 1 + rnd.nextInt(20);
            Tensor a = random(n, h, w, c), b = random(n, h, w, c), d = random(n, h, w, c);
            Tensor want = outLike(n, h, w, c), got = outLike(n, h, w, c);
            ref.add(new Tensor[] {a, b, d}, want);
            fast.add(new Tensor[] {a, b, d}, got);
            assertClose(want, got, 1e-6, "add");

            float f = (float) rnd.nextGaussian();
            ref.scale(a, f, want);
            fast.scale(a, f, got);
            assertClose(want, got, 0, "scale");

            Act act = randomAct(c);
            float[] slope = Randoms.floats(rnd, c, 0.3f);
            ref.activation(a, act, slope, want);
            fast.activation(a, act, slope, got);
            assertClose(want, got, 0, "activation " + act.kind());

            ref.copy(a, want);
            fast.copy(a, got);
            assertClose(want, got, 0, "copy");
        }
    }

    @Test
    void resamplingOpsMatchReference() {
        for (int trial = 0; trial < 30; trial++) {
            int r = 2 + rnd.nextInt(3), n = 1 + rnd.nextInt(2), h = 1 + rnd.nextInt(6), w = 1 + rnd.nextInt(6), c = 1 + rnd.nextInt(5);
            ChannelOrder order = rnd.nextBoolean() ? ChannelOrder.TORCH : ChannelOrder.TF;

            Tensor small = random(n, h, w, c);
            Tensor want = outLike(n, h * r, w * r, c), got = outLike(n, h * r, w * r, c);
            ref.upsampleNearest(small, r, want);
            fast.upsampleNearest(small, r, got);
            assertClose(want, got, 0, "upsample x" + r);

            Tensor deep = random(n, h, w, c * r * r);
            ref.pixelShuffle(deep, r, order, want);
            fast.pixelShuffle(deep, r, order, got);
            assertClose(want, got, 0, "pixel shuffle x" + r + " " + order);

            Tensor big = random(n, h * r, w * r, c);
            Tensor want2 = outLike(n, h, w, c * r * r), got2 = outLike(n, h, w, c * r * r);
            ref.pixelUnshuffle(big, r, order, want2);
            fast.pixelUnshuffle(big, r, order, got2);
            assertClose(want2, got2, 0, "pixel unshuffle x" + r + " " + order);

            // unshuffle then shuffle is the identity
            Tensor back = outLike(n, h * r, w * r, c);
            fast.pixelShuffle(got2, r, order, back);
            assertClose(big, back, 0, "shuffle(unshuffle(x)) " + order);
        }
    }

    @Test
    void pixelShuffleOrdersFollowTheirDefinitions() {
        // (1,1,1,8) -> (1,2,2,2): TORCH takes channel c*4 + i*2 + j, TF takes (i*2 + j)*2 + c
        Tensor in = Tensor.wrap(new float[] {0, 1, 2, 3, 4, 5, 6, 7}, 1, 1, 1, 8);
        Tensor torch = Tensor.allocate(1, 2, 2, 2), tf = Tensor.allocate(1, 2, 2, 2);
        fast.pixelShuffle(in, 2, ChannelOrder.TORCH, torch);
        fast.pixelShuffle(in, 2, ChannelOrder.TF, tf);
        assertEquals(1f, torch.get(0, 0, 1, 0));   // c=0, i=0, j=1
        assertEquals(4f, torch.get(0, 0, 0, 1));   // c=1, i=0, j=0
        assertEquals(2f, tf.get(0, 0, 1, 0));      // (0*2+1)*2 + 0
        assertEquals(7f, tf.get(0, 1, 1, 1));      // (1*2+1)*2 + 1
    }
}
