package dev.headroom.runtime.gpu;

import dev.headroom.core.Precision;
import dev.headroom.core.graph.Act;
import dev.headroom.core.graph.Op;
import dev.headroom.runtime.DeviceBuffer;
import dev.headroom.runtime.Ops;
import dev.headroom.runtime.Tensor;
import dev.headroom.runtime.cpu.CpuOps;
import dev.headroom.testing.Gpu;
import dev.headroom.testing.GpuTestBase;
import dev.headroom.testing.Randoms;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The CUDA diffusion-VAE ops against the CPU backend on random inputs. fp32 tolerances
 * (relative): GroupNorm 1e-4, SiLU 1e-5 (expf), strided convolution 1e-4, attention 1e-4 (cuBLAS
 * without TF32); fp16 storage: 1e-2 for all (inputs and outputs rounded to 11 bits). Attention is
 * also run on 6,400 positions, where its scores exceed the chunk workspace and go in chunks, and
 * each case once more in the largest scratch a plan's arena may give it (chunks of up to 4,096 queries).
 */
class GpuVaeOpsTest extends GpuTestBase {
    private final Ops cpu = new CpuOps();
    private final Random rnd = new Random(Randoms.seed());

    private Tensor random(int n, int h, int w, int c) {
        Tensor t = Tensor.allocate(n, h, w, c);
        for (int i = 0; i < t.data.length; i++) t.data[i] = 0.5f + (float) rnd.nextGaussian();
        return t;
    }

    private static void assertClose(Tensor want, Tensor got, double tol, String what) {
        float[] a = want.toArray(), b = got.toArray();
        for (int i = 0; i < a.length; i++) {
            double d = Math.abs(a[i] - b[i]);
            if (!(d <= tol * (1 + Math.abs(a[i])))) throw new AssertionError(what + ": element " + i + " is " + b[i] + ", CPU " + a[i]);
        }
    }

    /** Runs {@code op} on the device backend {@code dev} with uploaded copies of the host inputs; returns the output downloaded. */
    private static Tensor onDevice(CudaOps dev, Tensor[] ins, int[] outShape, java.util.function.BiConsumer<Tensor[], Tensor> op) {
        Tensor[] d = new Tensor[ins.length];
        for (int i = 0; i < ins.length; i++) d[i] = dev.upload(ins[i]);
        Tensor out = dev.allocate(outShape[0], outShape[1], outShape[2], outShape[3]);
        try {
            op.accept(d, out);
            return dev.download(out);
        } finally {
            dev.release(out);
            for (Tensor t : d) dev.release(t);
        }
    }

    @Test
    void vaeOpsMatchTheCpuInFp32AndFp16() {
        try (CudaOps half = Gpu.tryOpen(Precision.F16)) {
            for (CudaOps dev : new CudaOps[] {gpu, half}) {
                boolean f32 = dev == gpu;
                for (int trial = 0; trial < 10; trial++) {
                    int groups = 1 + rnd.nextInt(4), c = groups * (1 + rnd.nextInt(12)), n = 1 + rnd.nextInt(2);
                    int h = 2 + rnd.nextInt(20), w = 2 + rnd.nextInt(20);
                    Tensor x = random(n, h, w, c);
                    int[] shape = {n, h, w, c};
                    Op.GroupNorm gn = new Op.GroupNorm("g", "b", groups, 1e-6f, rnd.nextBoolean());
                    float[] gamma = Randoms.floats(rnd, c, 1f), beta = Randoms.floats(rnd, c, 1f);
                    Tensor want = Tensor.allocate(n, h, w, c);
                    cpu.groupNorm(x, gn, gamma, beta, want);
                    assertClose(want, onDevice(dev, new Tensor[] {x}, shape, (i, o) -> dev.groupNorm(i[0], gn, gamma, beta, o)), f32 ? 1e-4 : 1e-2,
                            dev.name() + " group norm " + gn);
                    cpu.activation(x, Act.SILU, null, want);
                    assertClose(want, onDevice(dev, new Tensor[] {x}, shape, (i, o) -> dev.activation(i[0], Act.SILU, null, o)), f32 ? 1e-5 : 1e-2,
                            dev.name() + " silu");
                    int cout = 1 + rnd.nextInt(20);
                    Op.StridedConv sc = new Op.StridedConv("k", "b", 3, c, cout, 2, 0, 1, 0, 1);
                    float[] kernel = Randoms.floats(rnd, 9 * c * cout, 0.3f), bias = Randoms.floats(rnd, cout, 1f);
                    int[] down = {n, sc.outHeight(h), sc.outWidth(w), cout};
                    Tensor wantDown = Tensor.allocate(down[0], down[1], down[2], down[3]);
                    cpu.stridedConv(x, sc, kernel, bias, wantDown);
                    assertClose(wantDown, onDevice(dev, new Tensor[] {x}, down, (i, o) -> dev.stridedConv(i[0], sc, kernel, bias, o)), f32 ? 1e-4 : 1e-2,
                            dev.name() + " strided conv " + h + "x" + w + " " + c + "->" + cout);
                    attention(dev, n, h, w, c, f32);
                }
                attention(dev, 1, 80, 80, 8, f32);
                // upsampling 8 channels a thread (upsample8: C a multiple of 8, 16-byte aligned), and channels 1..8 (one value a thread)
                for (int trial = 0; trial < 6; trial++) {
                    int c = 8 * (2 + rnd.nextInt(7)), n = 1 + rnd.nextInt(2), h = 1 + rnd.nextInt(9), w = 1 + rnd.nextInt(9), r = 2 + rnd.nextInt(2);
                    Tensor x = random(n, h, w, c), want = Tensor.allocate(n, h * r, w * r, c);
                    cpu.upsampleNearest(x, r, want);
                    assertClose(want, onDevice(dev, new Tensor[] {x}, new int[] {n, h * r, w * r, c}, (i, o) -> dev.upsampleNearest(i[0], r, o)),
                            f32 ? 0 : 1e-3, dev.name() + " upsample x" + r + " of " + n + "x" + h + "x" + w + "x" + c);
                    Tensor wantSlice = Tensor.allocate(n, h * r, w * r, 8);
                    cpu.upsampleNearest(x.slice(1, 8), r, wantSlice);
                    assertClose(wantSlice, onDevice(dev, new Tensor[] {x}, new int[] {n, h * r, w * r, 8}, (i, o) -> dev.upsampleNearest(i[0].slice(1, 8), r, o)),
                            f32 ? 0 : 1e-3, dev.name() + " upsample x" + r + " of channels 1..8 of " + c);
                }
            }
        }
    }

    /**
     * GroupNorm statistics gathered on the device band by band (as an exact tiled decode does)
     * give the whole image's normalisation bit for bit, at the VAE's channel counts (one and
     * several channels per thread of gn_stats) and others; both match the CPU.
     */
    @Test
    void groupNormStatisticsGatheredInBandsEqualTheWholeImagesOnTheDevice() {
        try (CudaOps half = Gpu.tryOpen(Precision.F16)) {
            for (CudaOps dev : new CudaOps[] {gpu, half}) {
                for (int c : new int[] {20, 32, 96, 128, 256, 512, 640}) {
                    int h = 5 + rnd.nextInt(30), w = 3 + rnd.nextInt(70);
                    Tensor x = random(1, h, w, c);
                    // 20 channels in 4 groups take gn_stats/gn_apply (one channel per thread); the rest lanes of 8
                    Op.GroupNorm gn = new Op.GroupNorm("g", "b", c % 32 == 0 ? 32 : 4, 1e-6f, rnd.nextBoolean());
                    float[] gamma = Randoms.floats(rnd, c, 1f), beta = Randoms.floats(rnd, c, 1f);
                    Tensor want = Tensor.allocate(1, h, w, c);
                    cpu.groupNorm(x, gn, gamma, beta, want);
                    Tensor whole = onDevice(dev, new Tensor[] {x}, new int[] {1, h, w, c}, (i, o) -> dev.groupNorm(i[0], gn, gamma, beta, o));
                    assertClose(want, whole, dev == gpu ? 1e-4 : 1e-2, dev.name() + " group norm over " + c + " channels");
                    Tensor banded = onDevice(dev, new Tensor[] {x}, new int[] {1, h, w, c}, (i, o) -> {
                        try (Ops.NormStats st = dev.normStats(gn, 1)) {
                            for (int a = 0; a < h; ) {
                                int b = Math.min(h, a + 1 + rnd.nextInt(h));
                                st.add(i[0].rows(a, b));
                                a = b;
                            }
                            st.apply(i[0], gamma, beta, o);
                        }
                    });
                    org.junit.jupiter.api.Assertions.assertArrayEquals(whole.toArray(), banded.toArray(),
                            dev.name() + " group norm over " + c + " channels, " + h + "x" + w + ": statistics in bands");
                    // written over its input, as a decode's plan runs a GroupNorm whose input nothing reads later
                    Tensor inPlace = onDevice(dev, new Tensor[] {x}, new int[] {1, h, w, c}, (i, o) -> {
                        dev.groupNorm(i[0], gn, gamma, beta, i[0]);
                        dev.copy(i[0], o);
                    });
                    org.junit.jupiter.api.Assertions.assertArrayEquals(whole.toArray(), inPlace.toArray(),
                            dev.name() + " group norm over " + c + " channels, " + h + "x" + w + ": in place");
                }
            }
        }
    }

    private void attention(CudaOps dev, int n, int h, int w, int c, boolean f32) {
        Tensor q = random(n, h, w, c), k = random(n, h, w, c), v = random(n, h, w, c);
        float scale = (float) (1 / Math.sqrt(c));
        Tensor want = Tensor.allocate(n, h, w, c);
        cpu.attention(q, k, v, scale, want);
        assertClose(want, onDevice(dev, new Tensor[] {q, k, v}, new int[] {n, h, w, c}, (i, o) -> dev.attention(i[0], i[1], i[2], scale, o)),
                f32 ? 1e-4 : 1e-2, dev.name() + " attention " + n + "x" + h + "x" + w + "x" + c);
        // in scratch of a plan's arena, in the largest chunks the planner may give it (all 6,400 positions: a chunk of 4,096 queries, then the rest)
        long[] sizes = VaeKernels.arenaChunks((long) h * w, c, dev.precision());
        if (sizes.length == 0) {
            System.out.println("attention in the arena: not checked (HEADROOM_VAE_ATTENTION=lent)");
            return;
        }
        long bytes = sizes[sizes.length - 1];
        assertClose(want, onDevice(dev, new Tensor[] {q, k, v}, new int[] {n, h, w, c}, (i, o) -> {
            DeviceBuffer scratch = dev.allocateArena(bytes);
            try {
                dev.attention(i[0], i[1], i[2], scale, o, scratch);
            } finally {
                dev.releaseArena(scratch);
            }
        }), f32 ? 1e-4 : 1e-2, dev.name() + " attention in " + bytes + " bytes of arena " + n + "x" + h + "x" + w + "x" + c);
    }
}
