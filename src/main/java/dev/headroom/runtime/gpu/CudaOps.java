package dev.headroom.runtime.gpu;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import dev.headroom.core.Precision;
import dev.headroom.core.graph.Act;
import dev.headroom.core.graph.ChannelOrder;
import dev.headroom.core.graph.Op;
import dev.headroom.cuda.CudaException;
import dev.headroom.cuda.Driver;
import dev.headroom.cuda.StreamCapture;
import dev.headroom.runtime.DeviceBuffer;
import dev.headroom.runtime.memory.DeviceMemory;
import dev.headroom.runtime.memory.MemoryOptions;
import dev.headroom.runtime.Ops;
import dev.headroom.runtime.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.Map;

/**
 * The CUDA backend in fp32 or fp16 storage (arithmetic and accumulation in fp32): convolutions
 * through cuDNN in NHWC, everything else through headroom's NVRTC kernels (kernels.cu). Work,
 * copies included, is queued on one stream of this backend's own (one backend per worker), so it
 * runs in issue order without events; copies go through pinned slots ({@link PinnedSlots}), and a
 * download can be waited for later ({@link #downloadLater}), so the host can cut the next tile
 * and blend the last while the device works. A forward pass can be
 * recorded as a CUDA graph and replayed ({@link #record}). All device memory, including cuDNN's
 * and cuBLAS's workspace and cuDNN's algorithm search, comes from one {@link DeviceMemory}.
 *
 * <p>Convolutions are {@link Convolutions}': each shape times the ways it can run (fused cuDNN
 * graphs, cuBLAS for 1x1, the legacy API) and keeps and remembers the fastest.
 */
public final class CudaOps implements Ops, AutoCloseable {
    private static final String[] KERNELS = {"epilogue", "add2", "scale", "upsample", "pixel_shuffle", "pixel_unshuffle"};

    private final Driver cu = Driver.get();

    private final int ordinal, device;
    private final Precision precision;
    private final MemorySegment module;
    private final MemorySegment stream;
    private final Map<String, MemorySegment> fns = new HashMap<>();
    private final DeviceMemory alloc;
    private final Convolutions convolutions;
    private final Map<float[], DeviceBuffer> constants = new IdentityHashMap<>();
    /** True while a forward pass is being recorded: nothing may be allocated or freed then. */
    private boolean capturing;
    /**
     * Bumped whenever something a recording points at is freed or replaced (the workspace, the
     * convolution plans); a recording from an older epoch refuses to replay.
     */
    private long epoch;
    private final java.util.Set<CudaRecording> recordings = new java.util.HashSet<>();
    /** Why recordings failed (`bench --json` lists them as capture_failures). */
    private final java.util.List<String> captureFailures = new java.util.ArrayList<>();
    private final PinnedSlots slots;
    private short[] halfBits = new short[0];
    /** The diffusion-VAE kernels, loaded on first use. */
    private VaeKernels vae;

    private CudaOps(int ordinal, Precision precision, MemoryOptions memory) {
        this.ordinal = ordinal;
        this.precision = precision;
        int count = cu.deviceCount();
        if (ordinal < 0 || ordinal >= count) throw new IllegalArgumentException("CUDA device " + ordinal + " does not exist; this machine has " + count);
        device = cu.device(ordinal);
        cu.retainPrimaryContext(device);
        int major = cu.attribute(Driver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device);
        int minor = cu.attribute(Driver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device);
        module = cu.moduleLoad(KernelCache.cubin("/dev/headroom/runtime/gpu/kernels.cu", major, minor, cu));
        String suffix = "_" + switch (precision) { case F32 -> "f32"; case F16 -> "f16"; case BF16 -> "bf16"; };
        for (String k : KERNELS) fns.put(k, cu.function(module, k + suffix));
        stream = cu.streamCreate();
        slots = new PinnedSlots(cu);
        alloc = CudaMemory.open(cu, ordinal, memory);
        convolutions = new Convolutions(this, cu, stream, alloc, precision,
                cu.deviceName(device) + " sm_" + major + minor + " driver " + cu.version());
    }

    /** Opens device {@code ordinal} in fp32: context, kernels (compiled or from the cache), cuDNN. */
    public static CudaOps open(int ordinal) {
        return new CudaOps(ordinal, Precision.F32, MemoryOptions.DEFAULT);
    }

    public static CudaOps open(int ordinal, Precision precision) {
        return new CudaOps(ordinal, precision, MemoryOptions.DEFAULT);
    }

    public static CudaOps open(int ordinal, Precision precision, MemoryOptions memory) {
        return new CudaOps(ordinal, precision, memory);
    }

    @Override
    public DeviceMemory memory() {
        return alloc;
    }

    public Precision precision() {
        return precision;
    }

    /** Bytes this backend keeps between calls: the convolution workspace and uploaded constants. */
    public long heldBytes() {
        long b = convolutions.heldBytes();
        for (DeviceBuffer c : constants.values()) b += c.bytes();
        return b;
    }

    /** How many convolution shapes run each way (FUSED, GRAPH, GEMM, LEGACY; see {@link Convolutions}). */
    public Map<String, Integer> convStrategies() {
        return convolutions.strategies();
    }

    /** How many convolution shapes took their strategy from an earlier process instead of timing it. */
    public int recalledChoices() {
        return convolutions.recalled();
    }

    /** Why cuDNN graphs, plans or cuBLAS were refused for some shapes (`bench --json`: graph_failures). */
    public java.util.List<String> graphFailures() {
        return convolutions.failures();
    }

    @Override
    public String name() {
        return "cuda:" + ordinal + " " + precision;
    }

    @Override
    public Tensor allocate(int n, int h, int w, int c) {
        notWhileCapturing("allocate a " + n + "x" + h + "x" + w + "x" + c + " tensor");
        return Tensor.onDevice(alloc.allocate((long) n * h * w * c * precision.bytes), precision, n, h, w, c);
    }

    @Override
    public void release(Tensor t) {
        alloc.free(t.device);
    }

    @Override
    public dev.headroom.core.plan.DeviceModel memoryModel() {
        return new CudaMemoryModel(precision);
    }

    @Override
    public Tensor view(DeviceBuffer arena, long byteOffset, int n, int h, int w, int c) {
        return Tensor.onDevice(new dev.headroom.runtime.ArenaView(arena.address() + byteOffset, (long) n * h * w * c * precision.bytes), precision, n, h, w, c);
    }

    @Override
    public Tensor upload(Tensor host) {
        if (!host.onHost()) return host;
        float[] dense = host.dense() ? host.data : host.toArray();
        Tensor d = allocate(host.n, host.h, host.w, host.c);
        copyIn(dense, d.device.address(), precision);
        return d;
    }

    @Override
    public Tensor download(Tensor t) {
        if (t.onHost()) return t;
        long bytes = hostBytes(t);
        PinnedSlots.Slot slot = slots.take(bytes);
        try {
            Tensor h = Tensor.allocate(t.n, t.h, t.w, t.c);   // before the wait: zeroing 50 MB costs as much as converting it
            // synchronous: on the legacy stream, which waits for this backend's stream
            cu.copyDtoH(slot.memory(), t.device.address(), bytes);
            toFloats(slot.memory(), t.precision, h.data, h.data.length);
            return h;
        } finally {
            slots.giveBack(slot);
        }
    }

    /**
     * Queues the copy of {@code t} into a pinned slot behind the work issued so far and returns at
     * once; {@link Download#get} waits for that copy alone and converts the slot's values. The
     * device buffer may be reused as soon as this returns: later work on this stream runs after
     * the copy.
     */
    @Override
    public Download downloadLater(Tensor t) {
        if (t.onHost()) return () -> t;
        long bytes = hostBytes(t);
        PinnedSlots.Slot slot = slots.take(bytes);
        try {
            cu.copyDtoHAsync(slot.memory(), t.device.address(), bytes, stream);
            slots.queued(slot, stream);
        } catch (RuntimeException e) {
            slots.giveBack(slot);
            throw e;
        }
        return new Download() {
            private Tensor done;

            @Override
            public Tensor get() {
                if (done != null) return done;
                try {
                    Tensor h = Tensor.allocate(t.n, t.h, t.w, t.c);   // while the copy may still be on its way
                    slots.await(slot);
                    toFloats(slot.memory(), t.precision, h.data, h.data.length);
                    done = h;
                } finally {
                    slots.giveBack(slot);
                }
                return done;
            }
        };
    }

    /** Bytes of a device tensor that can be copied home in one piece (a channel slice cannot). */
    private static long hostBytes(Tensor t) {
        if (!t.dense()) throw new IllegalArgumentException("download of a channel slice " + t);
        return (long) t.n * t.h * t.w * t.c * t.precision.bytes;
    }

    /** Values of {@code as} in {@code from} to floats in {@code out}. */
    private void toFloats(MemorySegment from, Precision as, float[] out, int count) {
        if (as == Precision.F32) {
            MemorySegment.copy(from, JAVA_FLOAT, 0, out, 0, count);
            return;
        }
        // one bulk copy, then a plain loop over arrays, which C2 vectorises (fp16: vcvtph2ps)
        short[] bits = shorts(count);
        MemorySegment.copy(from, JAVA_SHORT, 0, bits, 0, count);
        if (as == Precision.F16) {
            for (int i = 0; i < count; i++) out[i] = Float.float16ToFloat(bits[i]);
        } else {
            for (int i = 0; i < count; i++) out[i] = Float.intBitsToFloat(bits[i] << 16);
        }
    }

    /**
     * Copies floats to the device, converted to {@code as}: converted into a pinned slot, then
     * queued on this stream, so the call returns before the copy runs and the device keeps working
     * on what was issued before.
     */
    private void copyIn(float[] src, long dst, Precision as) {
        long bytes = (long) src.length * as.bytes;
        PinnedSlots.Slot slot = slots.take(bytes);
        try {
            MemorySegment staging = slot.memory();
            if (as == Precision.F32) {
                MemorySegment.copy(src, 0, staging, JAVA_FLOAT, 0, src.length);
            } else {
                short[] bits = shorts(src.length);
                if (as == Precision.F16) {
                    for (int i = 0; i < src.length; i++) bits[i] = Float.floatToFloat16(src[i]);
                } else {
                    for (int i = 0; i < src.length; i++) bits[i] = as.toBits(src[i]);
                }
                MemorySegment.copy(bits, 0, staging, JAVA_SHORT, 0, src.length);
            }
            cu.copyHtoDAsync(dst, staging, bytes, stream);
            slots.queued(slot, stream);
        } finally {
            slots.giveBack(slot);
        }
    }

    /** A reused array for 16-bit patterns on their way through the staging buffer. */
    private short[] shorts(int count) {
        if (halfBits.length < count) halfBits = new short[count];
        return halfBits;
    }

    private DeviceBuffer upload(float[] a, Precision as) {
        notWhileCapturing("upload " + a.length + " values");
        DeviceBuffer b;
        try (var scope = alloc.tag("weights", null)) {
            b = alloc.allocate((long) a.length * as.bytes);
        }
        copyIn(a, b.address(), as);
        return b;
    }

    /** fp32 parameters of epilogues: bias, PReLU slopes, residual scales. */
    DeviceBuffer uploadFloats(float[] a) {
        return upload(a, Precision.F32);
    }

    @Override
    public ConvWeights prepareConv(Op.Conv2d op, float[] kernel, float[] bias, float[] slope) {
        int kh = op.kh(), kw = op.kw(), ci = op.cin(), co = op.cout();
        float[] krsc = new float[kernel.length];
        for (int y = 0; y < kh; y++)
            for (int x = 0; x < kw; x++)
                for (int i = 0; i < ci; i++)
                    for (int o = 0; o < co; o++) krsc[((o * kh + y) * kw + x) * ci + i] = kernel[((y * kw + x) * ci + i) * co + o];
        return new Convolutions.Weights(op, upload(krsc, precision), bias == null ? null : uploadFloats(bias), slope == null ? null : uploadFloats(slope), alloc);
    }

    /** Runs every later convolution with {@code strategy} (FUSED, GRAPH, GEMM or LEGACY), or lets timing choose again (null). */
    void forceConvStrategy(String strategy) {
        convolutions.force(strategy);
    }

    @Override
    public void conv2d(Tensor in, ConvWeights weights, Tensor residual, Tensor out) {
        convolutions.run(in, (Convolutions.Weights) weights, residual, null, out);
    }

    @Override
    public void conv2d(Tensor in, ConvWeights weights, Tensor residual, Tensor outer, Tensor out) {
        convolutions.run(in, (Convolutions.Weights) weights, residual, outer, out);
    }

    /**
     * Marks every recording made so far as stale, because something it points at is about to be
     * freed or replaced (the convolution workspace, a graph); refused while recording.
     */
    void invalidateRecordings(String what) {
        notWhileCapturing(what);
        epoch++;
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

    @Override
    public void activation(Tensor in, Act act, float[] slope, Tensor out) {
        long s = slope == null ? 0L : constants.computeIfAbsent(slope, this::uploadFloats).address();
        epilogue(in, 0L, act, s, null, 0f, out);
    }

    @Override
    public void add(Tensor[] ins, Tensor out) {
        long pixels = (long) out.n * out.h * out.w;
        Tensor acc = ins[0];
        for (int k = 1; k < ins.length; k++) {
            Tensor b = ins[k];
            launchPixels("add2", pixels, out.c, ptr(acc), acc.stride, acc.offset, ptr(b), b.stride, b.offset, ptr(out), out.stride, out.offset, pixels, out.c);
            acc = out;
        }
        if (ins.length == 1) copy(ins[0], out);
    }

    @Override
    public void scale(Tensor in, float factor, Tensor out) {
        long pixels = (long) out.n * out.h * out.w;
        launchPixels("scale", pixels, out.c, ptr(in), in.stride, in.offset, factor, ptr(out), out.stride, out.offset, pixels, out.c);
    }

    @Override
    public void upsampleNearest(Tensor in, int r, Tensor out) {
        long pixels = (long) out.n * out.h * out.w;
        if (pixels >= 1L << 31) throw new IllegalArgumentException("upsample to " + out + ": more than 2^31 pixels in one tile");
        launchPixels("upsample", pixels, out.c, ptr(in), in.stride, in.offset, ptr(out), out.stride, out.offset,
                in.n, in.h, in.w, in.c, r);
    }

    @Override
    public void pixelShuffle(Tensor in, int r, ChannelOrder order, Tensor out) {
        long pixels = (long) out.n * out.h * out.w;
        if (pixels >= 1L << 31) throw new IllegalArgumentException("pixel shuffle to " + out + ": more than 2^31 pixels in one tile");
        launchPixels("pixel_shuffle", pixels, out.c, ptr(in), in.stride, in.offset, ptr(out), out.stride, out.offset,
                in.n, in.h, in.w, out.c, r, order == ChannelOrder.TORCH ? 0 : 1);
    }

    @Override
    public void pixelUnshuffle(Tensor in, int r, ChannelOrder order, Tensor out) {
        long pixels = (long) in.n * in.h * in.w;
        if (pixels >= 1L << 31) throw new IllegalArgumentException("pixel unshuffle of " + in + ": more than 2^31 pixels in one tile");
        launchPixels("pixel_unshuffle", pixels, in.c, ptr(in), in.stride, in.offset, ptr(out), out.stride, out.offset,
                in.n, in.h, in.w, in.c, r, order == ChannelOrder.TORCH ? 0 : 1);
    }

    @Override
    public void copy(Tensor in, Tensor out) {
        epilogue(in, 0L, Act.NONE, 0L, null, 0f, out);
    }

    private VaeKernels vae() {
        if (vae == null) vae = new VaeKernels(cu, device, stream, alloc, precision);
        return vae;
    }

    @Override
    public void groupNormStats(Tensor in, int groups, double[] acc) {
        vae().groupNormStats(in, groups, acc);
    }

    @Override
    public void groupNormApply(Tensor in, Op.GroupNorm op, float[] meanRstd, float[] gamma, float[] beta, Tensor out) {
        vae().groupNormApply(in, op, meanRstd, gamma, beta, out);
    }

    @Override
    public void stridedConv(Tensor in, Op.StridedConv op, float[] kernel, float[] bias, Tensor out) {
        vae().stridedConv(in, op, kernel, bias, out);
    }

    @Override
    public void attention(Tensor q, Tensor k, Tensor v, float scale, Tensor out) {
        vae().attention(q, k, v, scale, out);
    }

    @Override
    public void synchronize() {
        cu.synchronize();
    }

    /**
     * Records {@code work} on this backend's stream as a CUDA graph (see {@link StreamCapture}).
     * Null, with the reason kept for {@link #captureFailures}, when the work did something a
     * recording cannot hold: allocated or freed (a temporary freed after capture could be handed
     * to someone else before a replay writes to it), or a call CUDA forbids during capture. The
     * work has then not run.
     */
    @Override
    public Recording record(Runnable work) {
        StreamCapture sc = StreamCapture.get();
        long at = epoch;
        sc.begin(stream);
        RuntimeException failure = null;
        capturing = true;
        try {
            work.run();
        } catch (RuntimeException e) {
            failure = e;
        } finally {
            capturing = false;
        }
        MemorySegment graph = null;
        try {
            graph = sc.end(stream);
        } catch (CudaException e) {
            if (failure == null) failure = e;
        }
        try {
            if (failure == null && epoch == at) {
                CudaRecording r = new CudaRecording(sc.instantiate(graph), at);
                recordings.add(r);
                return r;
            }
        } catch (CudaException e) {
            failure = e;
        } finally {
            if (graph != null && !graph.equals(MemorySegment.NULL)) sc.destroyGraph(graph);
        }
        captureFailures.add(failure == null ? "the workspace or a convolution plan changed while recording" : failure.getMessage());
        return null;
    }

    /** Why forward passes could not be recorded as CUDA graphs (empty when every one was). */
    public java.util.List<String> captureFailures() {
        return java.util.List.copyOf(captureFailures);
    }

    private void notWhileCapturing(String what) {
        if (capturing) throw new IllegalStateException("cannot " + what + " while recording a CUDA graph: the recording would point at memory it does not own");
    }

    /** An instantiated CUDA graph of one forward pass. */
    private final class CudaRecording implements Recording {
        private MemorySegment exec;
        private final long epoch;

        CudaRecording(MemorySegment exec, long epoch) {
            this.exec = exec;
            this.epoch = epoch;
        }

        @Override
        public boolean replay() {
            if (exec == null || epoch != CudaOps.this.epoch) return false;
            StreamCapture.get().launch(exec, stream);
            return true;
        }

        @Override
        public void close() {
            if (exec == null) return;
            StreamCapture.get().destroyExec(exec);
            exec = null;
            recordings.remove(this);
        }
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
        launchGrid(fn, (channels + 31) / 32, (int) Math.min((pixels + 7) / 8, 65535), 32, 8, args);
    }

    private void launchGrid(String fn, int gx, int gy, int bx, int by, Object... args) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment params = a.allocate(ADDRESS, args.length);
            for (int i = 0; i < args.length; i++) {
                MemorySegment v = switch (args[i]) {
                    case Long l -> a.allocateFrom(JAVA_LONG, l);
                    case Integer n -> a.allocateFrom(JAVA_INT, n);
                    case Float f -> a.allocateFrom(JAVA_FLOAT, f);
                    default -> throw new IllegalArgumentException("kernel argument " + args[i]);
                };
                params.setAtIndex(ADDRESS, i, v);
            }
            cu.launch(fns.get(fn), gx, gy, 1, bx, by, 1, 0, stream, params);
        }
    }

    /** Frees what this backend holds and audits the allocator: live buffers at this point are leaks. */
    @Override
    public void close() {
        try {
            cu.synchronize();
            for (CudaRecording r : java.util.List.copyOf(recordings)) r.close();
            convolutions.close();
            if (vae != null) vae.close();
            for (DeviceBuffer b : constants.values()) alloc.free(b);
            constants.clear();
            slots.close();
            cu.streamDestroy(stream);
            cu.moduleUnload(module);
            alloc.close();
        } finally {
            cu.releasePrimaryContext(device);
        }
    }
}
