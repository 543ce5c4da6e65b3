package dev.headroom.runtime.gpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.Precision;
import dev.headroom.core.graph.Act;
import dev.headroom.core.graph.Op;
import dev.headroom.core.graph.Padding;
import dev.headroom.core.image.FloatImage;
import dev.headroom.core.image.Quality;
import dev.headroom.models.DefaultModel;
import dev.headroom.models.Model;
import dev.headroom.models.ModelLoader;
import dev.headroom.models.image.ImageFiles;
import dev.headroom.runtime.GraphRunner;
import dev.headroom.runtime.ImageUpscaler;
import dev.headroom.runtime.Ops;
import dev.headroom.runtime.Tensor;
import dev.headroom.runtime.TiledUpscaler;
import dev.headroom.runtime.cpu.CpuOps;
import dev.headroom.testing.Golden;
import dev.headroom.testing.Gpu;
import dev.headroom.testing.GpuTestBase;
import dev.headroom.testing.Randoms;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * fp16 storage on the GPU (fp32 arithmetic): ops and models against fp32 references with fp16
 * tolerances, and a whole photograph against the CPU (PSNR above 50 dB).
 */
class GpuFp16Test extends GpuTestBase {
    static CudaOps half;

    @BeforeAll
    static void openHalf() {
        half = Gpu.tryOpen(Precision.F16);
    }

    @AfterAll
    static void closeHalf() {
        if (half != null) half.close();
        half = null;
    }

    @Test
    void convolutionIsWithinHalfPrecisionOfTheCpu() {
        Random rnd = new Random(Randoms.seed());
        Ops cpu = new CpuOps();
        for (int trial = 0; trial < 20; trial++) {
            int k = rnd.nextBoolean() ? 3 : 1, cin = 8 * (1 + rnd.nextInt(12)), cout = 8 * (1 + rnd.nextInt(8));
            int h = 4 + rnd.nextInt(30), w = 4 + rnd.nextInt(30);
            Op.Conv2d op = new Op.Conv2d("k", "b", k, k, cin, cout, Padding.SAME, rnd.nextBoolean() ? Act.leakyRelu(0.2f) : Act.NONE);
            float[] kernel = Randoms.floats(rnd, k * k * cin * cout, (float) Math.sqrt(1.0 / (k * k * cin)));
            float[] bias = Randoms.floats(rnd, cout, 0.1f);
            Tensor x = Tensor.wrap(Randoms.floats(rnd, h * w * cin, 1f), 1, h, w, cin);
            Tensor want = Tensor.allocate(1, h, w, cout);
            cpu.conv2d(x, cpu.prepareConv(op, kernel, bias, null), want);
            Tensor dx = half.upload(x), dy = half.allocate(1, h, w, cout);
            try (Ops.ConvWeights gw = half.prepareConv(op, kernel, bias, null)) {
                half.conv2d(dx, gw, dy);
                float[] got = half.download(dy).data, ref = want.data;
                for (int i = 0; i < ref.length; i++) {
                    double d = Math.abs(got[i] - ref[i]);
                    if (d > 1e-2 * (1 + Math.abs(ref[i]))) {
                        throw new AssertionError("fp16 conv " + k + "x" + k + " " + cin + "->" + cout + ": element " + i + " is " + got[i] + ", CPU " + ref[i]);
                    }
                }
            } finally {
                half.release(dx);
                half.release(dy);
            }
        }
    }

    /**
     * Each way a convolution can run (one fused cuDNN graph; a graph then headroom's epilogue; the
     * legacy API on a packed input) on what the graph runner gives it: inputs, outputs and
     * residuals that are channel slices of wider buffers, bias, ReLU / leaky ReLU / none, residual
     * scales 0.2 and 1. Output channels outside the slice must stay untouched.
     */
    @ParameterizedTest(name = "{0}")
    @org.junit.jupiter.params.provider.ValueSource(strings = {"FUSED", "GRAPH", "LEGACY"})
    void everyConvolutionStrategyMatchesTheCpuOnSlices(String strategy) {
        Random rnd = new Random(Randoms.seed());
        Ops cpu = new CpuOps();
        half.forceConvStrategy(strategy);
        try {
            for (int trial = 0; trial < 12; trial++) {
                int k = trial % 4 == 3 ? 1 : 3, cin = 8 * (1 + rnd.nextInt(8)), cout = 8 * (1 + rnd.nextInt(6));
                int h = 5 + rnd.nextInt(40), w = 5 + rnd.nextInt(40);
                int inPad = 8 * rnd.nextInt(3), outPad = 8 * rnd.nextInt(3);   // extra channels around each slice
                Act act = switch (trial % 3) { case 0 -> Act.leakyRelu(0.2f); case 1 -> Act.RELU; default -> Act.NONE; };
                float rscale = trial % 2 == 0 ? 0f : (trial % 4 == 1 ? 0.2f : 1f), oscale = trial % 6 == 1 ? 0.2f : trial % 6 == 3 ? 1f : 0f;
                Op.Conv2d op = new Op.Conv2d("k", "b", k, k, cin, cout, Padding.SAME, rscale != 0f ? Act.NONE : act, rscale, oscale);
                float[] kernel = Randoms.floats(rnd, k * k * cin * cout, (float) Math.sqrt(1.0 / (k * k * cin)));
                float[] bias = Randoms.floats(rnd, cout, 0.1f);
                Tensor xBuf = Tensor.wrap(Randoms.floats(rnd, h * w * (cin + inPad), 1f), 1, h, w, cin + inPad);
                Tensor rBuf = Tensor.wrap(Randoms.floats(rnd, h * w * (cout + outPad), 1f), 1, h, w, cout + outPad);
                Tensor yBuf = Tensor.wrap(Randoms.floats(rnd, h * w * (cout + outPad), 1f), 1, h, w, cout + outPad);
                Tensor oBuf = Tensor.wrap(Randoms.floats(rnd, h * w * (cout + 8), 1f), 1, h, w, cout + 8);
                Tensor x = xBuf.slice(inPad / 2 / 8 * 8, cin), r = rscale != 0f ? rBuf.slice(0, cout) : null, o = oscale != 0f ? oBuf.slice(8, cout) : null;
                int yOff = outPad / 2 / 8 * 8;
                Tensor want = Tensor.wrap(yBuf.data.clone(), 1, h, w, cout + outPad);
                cpu.conv2d(x, cpu.prepareConv(op, kernel, bias, null), r, o, want.slice(yOff, cout));
                Tensor dx = half.upload(xBuf), dr = half.upload(rBuf), dy = half.upload(yBuf), dout = half.upload(oBuf);
                try (Ops.ConvWeights gw = half.prepareConv(op, kernel, bias, null)) {
                    half.conv2d(dx.slice(x.offset, cin), gw, r == null ? null : dr.slice(0, cout), o == null ? null : dout.slice(8, cout), dy.slice(yOff, cout));
                    float[] got = half.download(dy).data, ref = want.data;
                    for (int i = 0; i < ref.length; i++) {
                        double d = Math.abs(got[i] - ref[i]);
                        if (d > 1e-2 * (1 + Math.abs(ref[i]))) {
                            throw new AssertionError(strategy + " conv " + k + "x" + k + " " + cin + "->" + cout + " slice " + x.offset + "/" + xBuf.c
                                    + " -> " + yOff + "/" + yBuf.c + " " + op.act().kind() + " residual " + rscale + " outer " + oscale + ": element " + i
                                    + " (channel " + i % yBuf.c + ") is " + got[i] + ", CPU " + ref[i]);
                        }
                    }
                } finally {
                    half.release(dx);
                    half.release(dr);
                    half.release(dy);
                    half.release(dout);
                }
            }
            System.out.printf("GPU fp16 convolution strategy %s: %s%n", strategy, half.convStrategies());
            assertTrue(half.convStrategies().keySet().equals(java.util.Set.of(strategy)), "ran " + half.convStrategies());
        } finally {
            half.forceConvStrategy(null);
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({"rrdbnet-x4.pth, rrdbnet-x4.out.hrt", "rrdbnet-x2.pth, rrdbnet-x2.out.hrt", "srvgg-x4.pth, srvgg-x4.out.hrt"})
    void modelsAreWithinHalfPrecisionOfPyTorch(String file, String expected) {
        Model m = ModelLoader.load(Golden.dir().resolve(file));
        Golden in = Golden.read("input-20x28.hrt"), want = Golden.read(expected);
        try (GraphRunner runner = new GraphRunner(m.graph(), m.weights(), half)) {
            Tensor out = runner.run(Tensor.wrap(in.data(), in.shape()[0], in.shape()[1], in.shape()[2], in.shape()[3]));
            double err = Golden.relativeError(out.toArray(), want.data());
            System.out.printf("GPU fp16 %-16s max error / max |output| = %.2e%n", file, err);
            assertTrue(err <= 2e-2, file + ": " + err);
        }
    }

    /** The bar: a real photograph upscaled on the GPU in fp16 looks like the CPU's fp32 result (PSNR > 50 dB). */
    @Test
    void aPhotographUpscaledInHalfPrecisionMatchesTheCpu() {
        Model m = ModelLoader.load(DefaultModel.file());
        FloatImage photo = ImageFiles.read(Path.of("examples", "chelsea.png"), Long.MAX_VALUE);
        FloatImage cpuOut = new ImageUpscaler(new TiledUpscaler(new GraphRunner(m.graph(), m.weights(), new CpuOps()), m.valueRange()), 3)
                .upscale(photo, 256, 16, null);
        FloatImage gpuOut;
        try (GraphRunner runner = new GraphRunner(m.graph(), m.weights(), half)) {
            gpuOut = new ImageUpscaler(new TiledUpscaler(runner, m.valueRange()), 3).upscale(photo, 256, 16, null);
        }
        double psnr = Quality.psnr(clamp(cpuOut), clamp(gpuOut));
        System.out.printf("chelsea.png x2, default model: GPU fp16 vs CPU fp32 PSNR %.1f dB%n", psnr);
        assertTrue(psnr > 50, "PSNR " + psnr);
    }

    private static FloatImage clamp(FloatImage img) {
        float[] d = img.data().clone();
        for (int i = 0; i < d.length; i++) d[i] = Math.clamp(d[i], 0f, 1f);
        return new FloatImage(img.width(), img.height(), img.channels(), d, img.bitDepth());
    }
}
