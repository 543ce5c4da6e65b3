package dev.headroom.runtime.gpu;

import dev.headroom.core.Precision;
import dev.headroom.core.graph.Act;
import dev.headroom.core.graph.ChannelOrder;
import dev.headroom.cuda.Driver;
import dev.headroom.runtime.Tensor;
import java.lang.foreign.MemorySegment;
import java.util.Map;

/**
 * A session's per-pixel ops from headroom's kernels.cu, on the session's stream ({@link CudaOps}):
 * the epilogue (bias, activation, residuals; also copy), add, scale, nearest upsampling and pixel
 * (un)shuffle. They take NHWC views as a base address, a pixel stride and a channel offset, so
 * they read and write channel slices of arena tensors where they lie (the epilogue also in place).
 */
final class CudaPixelOps {
    private final Driver cu;
    private final CudaDevice dev;
    private final Precision precision;
    private final MemorySegment stream;
    /** kernels.cu in this precision, from the device on first launch (compiling meanwhile; see {@link CudaDevice#prefetch}). */
    private Map<String, MemorySegment> fns;

    CudaPixelOps(Driver cu, CudaDevice dev, Precision precision, MemorySegment stream) {
        this.cu = cu;
        this.dev = dev;
        this.precision = precision;
        this.stream = stream;
    }

    /** y = act(x + bias) with residuals: headroom's epilogue kernel, which also runs in place (x == y). */
    void epilogue(Tensor x, long bias, Act act, long slope, Tensor residual, float residualScale, Tensor y) {
        int a = switch (act.kind()) {
            case NONE -> 0;
            case RELU -> 1;
            case LEAKY_RELU -> 2;
            case PRELU -> 3;
            case SILU -> 4;
        };
        long pixels = (long) y.n * y.h * y.w;
        launchPixels("epilogue", pixels, y.c, ptr(x), x.stride, x.offset, bias, slope, a, act.slope(),
                residual == null ? 0L : ptr(residual), residual == null ? 0 : residual.stride, residual == null ? 0 : residual.offset, residualScale,
                ptr(y), y.stride, y.offset, pixels, y.c);
    }

    void add(Tensor[] ins, Tensor out) {
        long pixels = (long) out.n * out.h * out.w;
        Tensor acc = ins[0];
        for (int k = 1; k < ins.length; k++) {
            Tensor b = ins[k];
            launchPixels("add2", pixels, out.c, ptr(acc), acc.stride, acc.offset, ptr(b), b.stride, b.offset, ptr(out), out.stride, out.offset, pixels, out.c);
            acc = out;
        }
        if (ins.length == 1) copy(ins[0], out);
    }

    void scale(Tensor in, float factor, Tensor out) {
        long pixels = (long) out.n * out.h * out.w;
        launchPixels("scale", pixels, out.c, ptr(in), in.stride, in.offset, factor, ptr(out), out.stride, out.offset, pixels, out.c);
    }

    void upsampleNearest(Tensor in, int r, Tensor out) {
        long pixels = (long) out.n * out.h * out.w;
        if (pixels >= 1L << 31) throw new IllegalArgumentException("upsample to " + out + ": more than 2^31 pixels in one tile");
        long lanes = (long) in.n * in.h * in.w * (in.c / 8);
        if (UPSAMPLE8 && in.c % 8 == 0 && lanes < 1L << 31 && aligned16(in) && aligned16(out)) {
            dev.bind();
            launchGrid("upsample8", (int) Math.min((lanes + 255) / 256, 1 << 20), 1, 256, 1, ptr(in), in.stride, in.offset, ptr(out), out.stride, out.offset,
                    in.n, in.h, in.w, in.c, r);
            return;
        }
        launchPixels("upsample", pixels, out.c, ptr(in), in.stride, in.offset, ptr(out), out.stride, out.offset,
                in.n, in.h, in.w, in.c, r);
    }

    /** Whether upsampling moves 8 channels a thread in 16-byte accesses where it can (upsample8); HEADROOM_UPSAMPLE=scalar keeps one value a thread, for comparison. */
    private static final boolean UPSAMPLE8 = !"scalar".equals(System.getProperty("headroom.upsample", System.getenv("HEADROOM_UPSAMPLE")));

    /** Whether every pixel's channel 0 of a view lies on a 16-byte boundary. */
    private static boolean aligned16(Tensor t) {
        return ((ptr(t) + (long) t.offset * t.precision.bytes) & 15) == 0 && ((long) t.stride * t.precision.bytes) % 16 == 0;
    }

    void pixelShuffle(Tensor in, int r, ChannelOrder order, Tensor out) {
        long pixels = (long) out.n * out.h * out.w;
        if (pixels >= 1L << 31) throw new IllegalArgumentException("pixel shuffle to " + out + ": more than 2^31 pixels in one tile");
        launchPixels("pixel_shuffle", pixels, out.c, ptr(in), in.stride, in.offset, ptr(out), out.stride, out.offset,
                in.n, in.h, in.w, out.c, r, order == ChannelOrder.TORCH ? 0 : 1);
    }

    void pixelUnshuffle(Tensor in, int r, ChannelOrder order, Tensor out) {
        long pixels = (long) in.n * in.h * in.w;
        if (pixels >= 1L << 31) throw new IllegalArgumentException("pixel unshuffle of " + in + ": more than 2^31 pixels in one tile");
        launchPixels("pixel_unshuffle", pixels, in.c, ptr(in), in.stride, in.offset, ptr(out), out.stride, out.offset,
                in.n, in.h, in.w, in.c, r, order == ChannelOrder.TORCH ? 0 : 1);
    }

    void copy(Tensor in, Tensor out) {
        epilogue(in, 0L, Act.NONE, 0L, null, 0f, out);
    }

    /** Base address of a view (channel offsets are passed separately). */
    private static long ptr(Tensor t) {
        return t.device.address();
    }

    /**
     * Launches a (channels, pixels) grid of 32 x 8 blocks (see PIXEL_LOOP in kernels.cu); arguments
     * are Long (pointers and 64-bit), Integer or Float.
     */
    private void launchPixels(String fn, long pixels, int channels, Object... args) {
        if (pixels == 0 || channels == 0) return;
        dev.bind();
        launchGrid(fn, (channels + 31) / 32, (int) Math.min((pixels + 7) / 8, 65535), 32, 8, args);
    }

    private void launchGrid(String fn, int gx, int gy, int bx, int by, Object... args) {
        if (fns == null) fns = dev.functions(precision);
        KernelLaunch.launch(cu, fns.get(fn), gx, gy, bx, by, stream, args);
    }
}
