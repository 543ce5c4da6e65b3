package dev.headroom.runtime.gpu;

import dev.headroom.core.image.SampleSink;
import dev.headroom.cuda.Driver;
import dev.headroom.runtime.DeviceBuffer;
import dev.headroom.runtime.OutputWindow;
import dev.headroom.runtime.Tensor;
import dev.headroom.runtime.memory.DeviceMemory;
import java.lang.foreign.MemorySegment;
import java.util.IdentityHashMap;
import java.util.Map;

/**
 * CUDA's {@link OutputWindow} (kernels in window_kernels.cu): an fp32 ring of output rows in
 * device memory on the session's stream; tiles' outputs are added by a kernel straight from the
 * arena they were computed in, and final rows are converted to samples by a kernel and copied
 * home through one pinned buffer, {@link #BAND_BYTES} of samples at a time. Host memory is that
 * buffer and one band array, whatever the image's size.
 */
final class CudaWindow implements OutputWindow {
    private static final int BLOCK = 256, MAX_BLOCKS = 65535;

    /** window_kernels.cu of one session, loaded on its first window. */
    static final class Kernels implements AutoCloseable {
        private final Driver cu;
        private final MemorySegment module;
        final Map<String, MemorySegment> fns = new java.util.HashMap<>();

        static final String SOURCE = "/dev/headroom/runtime/gpu/window_kernels.cu";

        Kernels(Driver cu, CudaDevice device) {
            this.cu = cu;
            module = cu.moduleLoad(device.cubin(SOURCE));
            for (String k : new String[] {"blend_f32", "blend_f16", "blend_bf16", "to_samples", "zero"}) fns.put(k, cu.function(module, k));
        }

        @Override
        public void close() {
            cu.moduleUnload(module);
        }
    }

    private final Driver cu;
    private final CudaOps ops;
    private final Kernels kernels;
    private final MemorySegment stream;
    private final DeviceMemory alloc;
    private final int width, capacity, channels;
    private final DeviceBuffer acc;
    private final Map<float[], DeviceBuffer> weights = new IdentityHashMap<>();
    private DeviceBuffer samples;
    private MemorySegment pinned;
    private byte[] band = new byte[0];
    private long waitNanos;
    private boolean closed;

    CudaWindow(Driver cu, CudaOps ops, Kernels kernels, MemorySegment stream, DeviceMemory alloc, int width, int capacity, int channels) {
        if ((long) width * channels >= 1L << 31 || (long) capacity * width * channels >= 1L << 40) {
            throw new IllegalArgumentException("output window of " + width + "x" + capacity + "x" + channels + " is too large");
        }
        this.cu = cu;
        this.ops = ops;
        this.kernels = kernels;
        this.stream = stream;
        this.alloc = alloc;
        this.width = width;
        this.capacity = capacity;
        this.channels = channels;
        long n = (long) width * capacity * channels;
        try (var scope = alloc.tag("activations", "output window")) {
            acc = alloc.allocate(n * Float.BYTES, stream.address());
        }
        launch("zero", n, acc.address(), n);
    }

    @Override
    public void add(Tensor y, int b, int rows, int cols, float[] wy, float[] wx, float scale, int row, int col) {
        if (rows > capacity || col + cols > width) throw new IllegalArgumentException(rows + "x" + cols + " at column " + col + " beyond a window of " + capacity + "x" + width);
        if ((long) rows * cols * channels >= 1L << 31) throw new IllegalArgumentException("a tile of " + rows + "x" + cols + " output pixels: more than 2^31 values");
        if (y.c != channels) throw new IllegalArgumentException("tile of " + y.c + " channels into a window of " + channels);
        Tensor on = y.onHost() ? ops.upload(y) : y;   // a host tile: the degrade ladder's region, blended on the host from smaller runs
        try {
            String fn = "blend_" + switch (on.precision) { case F32 -> "f32"; case F16 -> "f16"; case BF16 -> "bf16"; };
            launch(fn, (long) rows * cols * channels, on.device.address(), on.stride, on.offset, b, on.h, on.w, rows, cols,
                    weights(wy).address(), weights(wx).address(), scale, acc.address(), width, capacity, row, col, channels);
        } finally {
            if (on != y) ops.release(on);
        }
    }

    /** A span's weights on the device, uploaded once. */
    private DeviceBuffer weights(float[] w) {
        DeviceBuffer d = weights.get(w);
        if (d == null) {
            d = ops.upload(w, dev.headroom.core.Precision.F32, "activations", "output window");
            weights.put(w, d);
        }
        return d;
    }

    @Override
    public void emit(int from, int rows, boolean gray, SampleSink sink) {
        int bits = sink.sampleBits();
        if (bits != 8 && bits != 16) throw new IllegalArgumentException("a sink of " + bits + "-bit samples: the output window gives 8 or 16 bits a sample");
        if (gray && channels != 3) throw new IllegalArgumentException("gray samples from a window of " + channels + " channels (it takes 3)");
        int bytes = bits / 8, out = gray ? 1 : channels;
        long rowBytes = (long) width * out * bytes, fullRowBytes = (long) width * channels * bytes;
        int per = (int) Math.max(1, BAND_BYTES / fullRowBytes);   // bands of as many rows gray or not: the buffers fit both
        if (samples == null) {
            try (var scope = alloc.tag("activations", "output samples")) {
                samples = alloc.allocate(per * fullRowBytes, stream.address());
            }
            pinned = cu.memAllocHost(per * fullRowBytes);
        }
        long t0 = System.nanoTime();
        cu.streamSynchronize(stream);   // the tiles still running: the device's time, not the writer's
        waitNanos += System.nanoTime() - t0;
        for (int done = 0; done < rows; ) {
            int n = Math.min(per, rows - done);
            int bandBytes = Math.toIntExact(n * rowBytes);
            launch("to_samples", (long) n * width * out, acc.address(), width, capacity, from + done, n, channels, bytes, gray ? 1 : 0, samples.address());
            cu.copyDtoHAsync(pinned, samples.address(), bandBytes, stream);
            cu.streamSynchronize(stream);
            if (band.length < bandBytes) band = new byte[bandBytes];
            MemorySegment.copy(pinned, java.lang.foreign.ValueLayout.JAVA_BYTE, 0, band, 0, bandBytes);
            sink.sampleRows(band, 0, n);
            done += n;
        }
    }

    @Override
    public long waitNanos() {
        return waitNanos;
    }

    /** A flat grid-stride launch over {@code elements}; arguments are Long, Integer or Float. */
    private void launch(String fn, long elements, Object... args) {
        int blocks = (int) Math.max(1, Math.min((elements + BLOCK - 1) / BLOCK, MAX_BLOCKS));
        KernelLaunch.launch(cu, kernels.fns.get(fn), blocks, 1, BLOCK, 1, stream, args);
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        cu.streamSynchronize(stream);
        alloc.free(acc);
        if (samples != null) alloc.free(samples);
        if (pinned != null) cu.memFreeHost(pinned);
        for (DeviceBuffer d : weights.values()) alloc.free(d);
        weights.clear();
    }
}
