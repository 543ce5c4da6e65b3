package dev.headroom.runtime.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.headroom.core.graph.Act;
import dev.headroom.core.graph.ChannelOrder;
import dev.headroom.core.graph.Op;
import dev.headroom.core.graph.Padding;
import dev.headroom.runtime.Ops;
import dev.headroom.runtime.Tensor;
import dev.headroom.runtime.cpu.CpuOps;
import dev.headroom.testing.GpuTestBase;
import dev.headroom.testing.Randoms;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Every CUDA op against the CPU backend on fresh random inputs, with channel-slice inputs and
 * outputs; fp32 tolerance: convolution 1e-4 relative (cuDNN with FMA math sums in another order),
 * everything else exact. Ends with the allocator back at zero.
 */
class CudaOpsTest extends GpuTestBase {
    final Ops cpu = new CpuOps();
    final Random rnd = new Random(Randoms.seed());
    final List<Tensor> buffers = new ArrayList<>();

    /** A host tensor (maybe a slice) and its device twin with the same layout. */
    private Tensor[] pair(int n, int h, int w, int c, boolean fillNaN) {
        int extra = rnd.nextBoolean() ? 1 + rnd.nextInt(5) : 0, off = extra == 0 ? 0 : rnd.nextInt(extra + 1);
        Tensor host = Tensor.allocate(n, h, w, c + extra);
        for (int i = 0; i < host.data.length; i++) host.data[i] = fillNaN ? Float.NaN : (float) rnd.nextGaussian();
        Tensor dev = gpu.upload(host);
        buffers.add(dev);
        return new Tensor[] {host.slice(off, c), dev.slice(off, c)};
    }

    private void assertSame(Tensor hostOut, Tensor devOut, double tol, String what) {
        // download the device buffer the slice lives in, then read the same slice on the host
        Tensor buffer = null;
        for (Tensor b : buffers) if (b.device == devOut.device) buffer = b;
        Tensor back = gpu.download(buffer);
        Tensor view = back.slice(devOut.offset, devOut.c);
        float[] want = hostOut.toArray(), got = view.toArray();
        for (int i = 0; i < want.length; i++) {
            double d = Math.abs(want[i] - got[i]);
            if (!(d <= tol * (1 + Math.abs(want[i])))) throw new AssertionError(what + ": element " + i + " is " + got[i] + ", CPU " + want[i]);
        }
    }

    private void freeAll() {
        for (Tensor b : buffers) gpu.release(b);
        buffers.clear();
    }

    @Test
    void conv2dMatchesTheCpu() {
        convolutionTrials(new int[] {1, 3, 5}, 40);
    }

    /**
     * 1x1 convolutions as one cuBLAS GEMM straight between channel slices (odd widths and offsets,
     * batches of two), then the epilogue in place, in true fp32.
     */
    @Test
    void pointwiseConvolutionAsOneGemmMatchesTheCpu() {
        gpu.forceConvStrategy("GEMM");
        try {
            convolutionTrials(new int[] {1}, 24);
            assertEquals(java.util.Set.of("GEMM"), gpu.convStrategies().keySet());
        } finally {
            gpu.forceConvStrategy(null);
        }
    }

    private void convolutionTrials(int[] ks, int trials) {
        int[] chans = {1, 3, 4, 12, 32, 64, 67};
        for (int trial = 0; trial < trials; trial++) {
            int k = ks[rnd.nextInt(ks.length)], cin = chans[rnd.nextInt(chans.length)], cout = chans[rnd.nextInt(chans.length)];
            int n = 1 + rnd.nextInt(2), h = 1 + rnd.nextInt(20), w = 1 + rnd.nextInt(20);
            Padding pad = rnd.nextInt(3) == 0 && h >= k && w >= k ? Padding.VALID : Padding.SAME;
            Act act = switch (rnd.nextInt(4)) { case 0 -> Act.NONE; case 1 -> Act.RELU; case 2 -> Act.leakyRelu(0.2f); default -> Act.prelu("s"); };
            float residualScale = rnd.nextBoolean() ? 0f : 0.2f;
            Op.Conv2d op = new Op.Conv2d("k", rnd.nextBoolean() ? "b" : null, k, k, cin, cout, pad, act, residualScale);
            float[] kernel = Randoms.floats(rnd, k * k * cin * cout, 0.3f);
            float[] bias = op.bias() == null ? null : Randoms.floats(rnd, cout, 1f);
            float[] slope = act.kind() == Act.Kind.PRELU ? Randoms.floats(rnd, cout, 0.3f) : null;
            Tensor[] x = pair(n, h, w, cin, false);
            Tensor[] y = pair(n, op.outHeight(h), op.outWidth(w), cout, true);
            Tensor[] res = op.hasResidual() ? pair(n, op.outHeight(h), op.outWidth(w), cout, false) : new Tensor[2];
            cpu.conv2d(x[0], cpu.prepareConv(op, kernel, bias, slope), res[0], y[0]);
            try (Ops.ConvWeights gw = gpu.prepareConv(op, kernel, bias, slope)) {
                gpu.conv2d(x[1], gw, res[1], y[1]);
                assertSame(y[0], y[1], 1e-4, "conv " + k + "x" + k + " " + cin + "->" + cout + " " + pad + " " + act.kind() + " n" + n + " " + h + "x" + w);
            }
            freeAll();
        }
    }

    @Test
    void elementwiseAndResamplingOpsMatchTheCpu() {
        for (int trial = 0; trial < 30; trial++) {
            int n = 1 + rnd.nextInt(2), h = 1 + rnd.nextInt(7), w = 1 + rnd.nextInt(7), c = 1 + rnd.nextInt(9), r = 2 + rnd.nextInt(3);
            ChannelOrder order = rnd.nextBoolean() ? ChannelOrder.TORCH : ChannelOrder.TF;
            Tensor[] a = pair(n, h, w, c, false), b = pair(n, h, w, c, false), d = pair(n, h, w, c, false);
            Tensor[] y = pair(n, h, w, c, true);
            cpu.add(new Tensor[] {a[0], b[0], d[0]}, y[0]);
            gpu.add(new Tensor[] {a[1], b[1], d[1]}, y[1]);
            assertSame(y[0], y[1], 1e-6, "add3");
            cpu.scale(a[0], 0.2f, y[0]);
            gpu.scale(a[1], 0.2f, y[1]);
            assertSame(y[0], y[1], 0, "scale");
            Act act = Act.leakyRelu(0.1f);
            cpu.activation(a[0], act, null, y[0]);
            gpu.activation(a[1], act, null, y[1]);
            assertSame(y[0], y[1], 0, "leaky relu");
            float[] slope = Randoms.floats(rnd, c, 0.3f);
            cpu.activation(a[0], Act.prelu("p"), slope, y[0]);
            gpu.activation(a[1], Act.prelu("p"), slope, y[1]);
            assertSame(y[0], y[1], 0, "prelu");

            Tensor[] up = pair(n, h * r, w * r, c, true);
            cpu.upsampleNearest(a[0], r, up[0]);
            gpu.upsampleNearest(a[1], r, up[1]);
            assertSame(up[0], up[1], 0, "upsample x" + r);
            Tensor[] deep = pair(n, h, w, c * r * r, false);
            cpu.pixelShuffle(deep[0], r, order, up[0]);
            gpu.pixelShuffle(deep[1], r, order, up[1]);
            assertSame(up[0], up[1], 0, "pixel shuffle " + order);
            Tensor[] big = pair(n, h * r, w * r, c, false), small = pair(n, h, w, c * r * r, true);
            cpu.pixelUnshuffle(big[0], r, order, small[0]);
            gpu.pixelUnshuffle(big[1], r, order, small[1]);
            assertSame(small[0], small[1], 0, "pixel unshuffle " + order);
            freeAll();
        }
    }
}
