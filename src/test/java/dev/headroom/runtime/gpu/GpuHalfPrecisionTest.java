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
import dev.headroom.testing.HalfGpuTestBase;
import dev.headroom.testing.Randoms;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * 16-bit storage on the GPU, fp16 and bf16 (fp32 arithmetic): ops and models against fp32
 * references with a tolerance per type, and a whole photograph against the CPU (PSNR above 50 dB
 * in fp16, the bar; above 40 dB in bf16, whose 8-bit mantissa keeps 3 bits fewer).
 */
class GpuHalfPrecisionTest extends HalfGpuTestBase {
    static CudaOps bf16;

    @BeforeAll
    static void openBf16() {
        bf16 = half == null ? null : Gpu.tryOpen(Precision.BF16);
    }

    @AfterAll
    static void closeBf16() {
        if (bf16 != null) bf16.close();
        bf16 = null;
    }

    static CudaOps ops(Precision p) {
        return switch (p) {
            case F16 -> half;
            case BF16 -> bf16;
            case F32 -> gpu;
        };
    }

    /**
     * Relative tolerance of a convolution or an op, per storage type: a few units of the last place
     * kept; in fp32 tight enough to catch inputs rounded to TF32 (about 1e-3 on these sums).
     */
    static double tolerance(Precision p) {
        return switch (p) {
            case F16 -> 1e-2;
            case BF16 -> 5e-2;
            case F32 -> 1e-4;
        };
    }

    @ParameterizedTest(name = "{0}")
    @org.junit.jupiter.params.provider.EnumSource(value = Precision.class, names = {"F16", "BF16"})
    void convolutionIsWithinStoragePrecisionOfTheCpu(Precision precision) {
        CudaOps half = ops(precision);
        double tol = tolerance(precision);
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
                    if (d > tol * (1 + Math.abs(ref[i]))) {
                        throw new AssertionError(precision + " conv " + k + "x" + k + " " + cin + "->" + cout + ": element " + i + " is " + got[i] + ", CPU " + ref[i]);
                    }
                }
            } finally {
                half.release(dx);
                half.release(dy);
            }
        }
    }

    /**
     * Each way a convolution can run (one fused cuDNN graph; a graph then headroom's epilogue; one
     * cuBLAS GEMM between the slices, for 1x1 only; the legacy API on a packed input) on what the
     * graph runner gives it: inputs, outputs and
     * residuals that are channel slices of wider buffers, bias, ReLU / leaky ReLU / none, residual
     * scales 0.2 and 1. Output channels outside the slice must stay untouched. In fp32 too, where
     * the graphs must keep to engines without TF32.
     */
    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({"F16, FUSED", "F16, GRAPH", "F16, GEMM", "F16, LEGACY", "BF16, FUSED", "BF16, GRAPH", "BF16, GEMM", "BF16, LEGACY",
            "F32, FUSED", "F32, GRAPH", "F32, GEMM", "F32, LEGACY"})
    void everyConvolutionStrategyMatchesTheCpuOnSlices(Precision precision, String strategy) {
        CudaOps half = ops(precision);
        double tol = tolerance(precision);
        Random rnd = new Random(Randoms.seed());
        Ops cpu = new CpuOps();
        half.forceConvStrategy(strategy);
        try {
            int unavailable = 0;
            for (int trial = 0; trial < 12; trial++) {
                int k = trial % 4 == 3 || strategy.equals("GEMM") ? 1 : 3, cin = 8 * (1 + rnd.nextInt(8)), cout = 8 * (1 + rnd.nextInt(6));
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
                    try {
                        half.conv2d(dx.slice(x.offset, cin), gw, r == null ? null : dr.slice(0, cout), o == null ? null : dout.slice(8, cout), dy.slice(yOff, cout));
                    } catch (IllegalStateException e) {
                        // fp32 keeps to engines without TF32, and cuDNN has a fused one for some shapes only
                        if (!(precision == Precision.F32 && strategy.equals("FUSED"))) throw e;
                        unavailable++;
                        continue;
                    }
                    float[] got = half.download(dy).data, ref = want.data;
                    for (int i = 0; i < ref.length; i++) {
                        double d = Math.abs(got[i] - ref[i]);
                        if (d > tol * (1 + Math.abs(ref[i]))) {
                            throw new AssertionError(precision + " " + strategy + " conv " + k + "x" + k + " " + cin + "->" + cout + " slice " + x.offset + "/" + xBuf.c
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
            System.out.printf("GPU %s convolution strategy %s: %s%s%n", precision, strategy, half.convStrategies(),
                    unavailable == 0 ? "" : "; not available for " + unavailable + " of 12 shapes");
            assertTrue(unavailable < 12, precision + " " + strategy + " ran on none of the 12 shapes");
            assertTrue(half.convStrategies().keySet().equals(java.util.Set.of(strategy)), "ran " + half.convStrategies());
        } finally {
            half.forceConvStrategy(null);
        }
    }

    /**
     * A dense block's narrow layer (RDN esrgan-slim: G=4): the convolution reads channels 0..cin of
     * a buffer and writes the cout channels right after them, cout * 2 bytes not a multiple of 16.
     * With the strategy the clock picks, the output must match the CPU and the input channels
     * must be untouched (a kernel storing 16 bytes at a time would overwrite them).
     */
    @ParameterizedTest(name = "{0}")
    @org.junit.jupiter.params.provider.EnumSource(value = Precision.class, names = {"F16", "BF16"})
    void aNarrowOutputBesideItsInputLeavesTheInputAlone(Precision precision) {
        CudaOps half = ops(precision);
        Random rnd = new Random(Randoms.seed());
        Ops cpu = new CpuOps();
        for (int cout : new int[] {4, 12, 3}) {
            int cin = 64, h = 33, w = 29;
            Op.Conv2d op = new Op.Conv2d("k", "b", 3, 3, cin, cout, Padding.SAME, Act.RELU, 0f, 0f);
            float[] kernel = Randoms.floats(rnd, 9 * cin * cout, (float) Math.sqrt(1.0 / (9 * cin))), bias = Randoms.floats(rnd, cout, 0.1f);
            float[] data = Randoms.floats(rnd, h * w * (cin + cout), 1f);
            for (int i = 0; i < data.length; i++) data[i] = precision.fromBits(precision.toBits(data[i]));   // representable, so the copy is exact
            Tensor buf = Tensor.wrap(data.clone(), 1, h, w, cin + cout);
            cpu.conv2d(buf.slice(0, cin), cpu.prepareConv(op, kernel, bias, null), null, buf.slice(cin, cout));
            Tensor dev = half.upload(Tensor.wrap(data, 1, h, w, cin + cout));
            try (Ops.ConvWeights gw = half.prepareConv(op, kernel, bias, null)) {
                half.conv2d(dev.slice(0, cin), gw, null, dev.slice(cin, cout));
                float[] got = half.download(dev).data;
                for (int i = 0; i < got.length; i++) {
                    int ch = i % (cin + cout);
                    double tol = ch < cin ? 0 : tolerance(precision) * (1 + Math.abs(buf.data[i]));
                    if (Math.abs(got[i] - buf.data[i]) > tol) {
                        throw new AssertionError(precision + " conv " + cin + "->" + cout + " into channels " + cin + ".." + (cin + cout) + " of " + (cin + cout)
                                + ": element " + i + " (pixel " + i / (cin + cout) + ", channel " + ch + (ch < cin ? ", an input channel" : "") + ") is "
                                + got[i] + ", want " + buf.data[i] + "; strategies " + half.convStrategies());
                    }
                }
            } finally {
                half.release(dev);
            }
        }
        System.out.printf("GPU %s narrow outputs beside their input: %s%n", precision, half.convStrategies());
    }

    /**
     * Elementwise and resampling ops in 16-bit storage against the CPU, on inputs already rounded
     * to the type (so only the op's own rounding of its result counts), reading and writing row
     * bands and channel slices as banded tails do.
     */
    @ParameterizedTest(name = "{0}")
    @org.junit.jupiter.params.provider.EnumSource(value = Precision.class, names = {"F16", "BF16"})
    void elementwiseOpsOnRowBandsAreWithinStoragePrecision(Precision precision) {
        CudaOps half = ops(precision);
        Random rnd = new Random(Randoms.seed());
        Ops cpu = new CpuOps();
        for (int trial = 0; trial < 10; trial++) {
            int h = 6 + rnd.nextInt(20), w = 1 + rnd.nextInt(20), c = 1 + rnd.nextInt(9), r = 2 + rnd.nextInt(2);
            int from = rnd.nextInt(h / 2), to = h / 2 + 1 + rnd.nextInt(h - h / 2 - 1);
            float[] av = Randoms.floats(rnd, h * w * (c + 2), 2f), bv = Randoms.floats(rnd, h * w * (c + 2), 2f);
            for (int i = 0; i < av.length; i++) {
                av[i] = precision.fromBits(precision.toBits(av[i]));
                bv[i] = precision.fromBits(precision.toBits(bv[i]));
            }
            Tensor a = Tensor.wrap(av, 1, h, w, c + 2), b = Tensor.wrap(bv, 1, h, w, c + 2);
            Tensor da = half.upload(a), db = half.upload(b);
            int rows = to - from;
            Tensor sum = Tensor.allocate(1, rows, w, c), up = Tensor.allocate(1, rows * r, w * r, c);
            cpu.add(new Tensor[] {a.rows(from, to).slice(1, c), b.rows(from, to).slice(2, c)}, sum);
            cpu.upsampleNearest(a.rows(from, to).slice(1, c), r, up);
            Tensor dsum = half.allocate(1, rows, w, c), dup = half.allocate(1, rows * r, w * r, c);
            try {
                half.add(new Tensor[] {da.rows(from, to).slice(1, c), db.rows(from, to).slice(2, c)}, dsum);
                half.upsampleNearest(da.rows(from, to).slice(1, c), r, dup);
                assertClose(sum.data, half.download(dsum).data, Math.ulp(1f) * (1 << 24 - (precision == Precision.F16 ? 11 : 8)), precision + " add");
                assertClose(up.data, half.download(dup).data, 0, precision + " upsample");
            } finally {
                for (Tensor t : new Tensor[] {da, db, dsum, dup}) half.release(t);
            }
        }
    }

    /** |got - want| <= tol * (1 + |want|) everywhere. */
    private static void assertClose(float[] want, float[] got, double tol, String what) {
        for (int i = 0; i < want.length; i++) {
            if (!(Math.abs(got[i] - want[i]) <= tol * (1 + Math.abs(want[i])))) throw new AssertionError(what + ": element " + i + " is " + got[i] + ", CPU " + want[i]);
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({"F16, rrdbnet-x4.pth, rrdbnet-x4.out.hrt", "F16, rrdbnet-x2.pth, rrdbnet-x2.out.hrt", "F16, srvgg-x4.pth, srvgg-x4.out.hrt",
            "BF16, rrdbnet-x4.pth, rrdbnet-x4.out.hrt", "BF16, rrdbnet-x2.pth, rrdbnet-x2.out.hrt", "BF16, srvgg-x4.pth, srvgg-x4.out.hrt"})
    void modelsAreWithinStoragePrecisionOfPyTorch(Precision precision, String file, String expected) {
        CudaOps half = ops(precision);
        Model m = ModelLoader.load(Golden.dir().resolve(file));
        Golden in = Golden.read("input-20x28.hrt"), want = Golden.read(expected);
        try (GraphRunner runner = new GraphRunner(m.graph(), m.weights(), half)) {
            Tensor out = runner.run(Tensor.wrap(in.data(), in.shape()[0], in.shape()[1], in.shape()[2], in.shape()[3]));
            double err = Golden.relativeError(out.toArray(), want.data());
            System.out.printf("GPU %s %-16s max error / max |output| = %.2e%n", precision, file, err);
            assertTrue(err <= 2 * tolerance(precision), precision + " " + file + ": " + err);
        }
    }

    /** The bar: a real photograph upscaled on the GPU in fp16 looks like the CPU's fp32 result (PSNR > 50 dB); bf16 > 40 dB. */
    @ParameterizedTest(name = "{0}")
    @org.junit.jupiter.params.provider.EnumSource(value = Precision.class, names = {"F16", "BF16"})
    void aPhotographUpscaledIn16BitsMatchesTheCpu(Precision precision) {
        CudaOps half = ops(precision);
        Model m = ModelLoader.load(DefaultModel.file());
        FloatImage photo = ImageFiles.read(Path.of("examples", "chelsea.png"), Long.MAX_VALUE);
        FloatImage cpuOut = new ImageUpscaler(new TiledUpscaler(new GraphRunner(m.graph(), m.weights(), new CpuOps()), m.valueRange()), 3)
                .upscale(photo, 256, 16, null);
        FloatImage gpuOut;
        try (GraphRunner runner = new GraphRunner(m.graph(), m.weights(), half)) {
            gpuOut = new ImageUpscaler(new TiledUpscaler(runner, m.valueRange()), 3).upscale(photo, 256, 16, null);
        }
        double psnr = Quality.psnr(clamp(cpuOut), clamp(gpuOut));
        System.out.printf("chelsea.png x2, default model: GPU %s vs CPU fp32 PSNR %.1f dB%n", precision, psnr);
        assertTrue(psnr > (precision == Precision.F16 ? 50 : 40), precision + " PSNR " + psnr);
    }

    private static FloatImage clamp(FloatImage img) {
        float[] d = img.data().clone();
        for (int i = 0; i < d.length; i++) d[i] = Math.clamp(d[i], 0f, 1f);
        return new FloatImage(img.width(), img.height(), img.channels(), d, img.bitDepth());
    }
}
