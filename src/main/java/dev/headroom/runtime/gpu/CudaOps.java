package dev.headroom.runtime.gpu;

import dev.headroom.core.Precision;
import dev.headroom.core.graph.Act;
import dev.headroom.core.graph.ChannelOrder;
import dev.headroom.core.graph.Op;
import dev.headroom.cuda.Driver;
import dev.headroom.runtime.Device;
import dev.headroom.runtime.CloseSteps;
import dev.headroom.runtime.DeviceBuffer;
import dev.headroom.runtime.memory.DeviceMemory;
import dev.headroom.runtime.memory.MemoryOptions;
import dev.headroom.runtime.Session;
import dev.headroom.runtime.Tensor;
import java.lang.foreign.MemorySegment;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * A session on a GPU ({@link CudaDevice}): the CUDA backend's ops in one storage precision, fp32,
 * fp16 or bf16 (arithmetic and accumulation in fp32): convolutions through cuDNN in NHWC
 * ({@link Convolutions}: each shape times the ways it can run, fused cuDNN graphs, cuBLAS for 1x1,
 * the legacy API, and keeps and remembers the fastest), everything else through headroom's NVRTC
 * kernels (kernels.cu's per-pixel ops in {@link CudaPixelOps}, the VAE's in {@link VaeKernels}).
 * Work, copies included, is queued on this session's own stream, so it runs in issue order
 * without events, and waits are for that stream alone; copies go through pinned slots
 * ({@link CudaCopies}), and a download can be waited for later ({@link #downloadLater}), so the
 * host can cut the next tile and blend the last while the device works. A forward pass can be
 * recorded as a CUDA graph and replayed ({@link CudaRecorder}). All device memory, including
 * cuDNN's and cuBLAS's workspace and cuDNN's algorithm search, comes from the device's one
 * {@link DeviceMemory}, in this stream's pools.
 *
 * <p>{@code CudaOps.open(0, precision)} is a session on a device of its own, closed with it (one
 * job, as the command line runs); a server opens sessions of one shared device:
 * {@code device.openSession(precision)}. One thread at a time uses a session; the device's
 * context is made current on whichever thread that is.
 */
public final class CudaOps implements Session {
    private final Driver cu = Driver.get();

    private final CudaDevice dev;
    private final boolean ownsDevice;
    private final Precision precision;
    private final MemorySegment stream;
    private final long streamId;
    /** kernels.cu's per-pixel ops on this stream. */
    private final CudaPixelOps pixels;
    private final DeviceMemory alloc;
    private final CudaCopies copies;
    private final CudaRecorder recorder;
    private final Convolutions convolutions;
    private final Map<float[], DeviceBuffer> constants = new IdentityHashMap<>();
    /** Expands compact kernels before their convolutions; made at the first one. */
    private WeightExpander expander;
    /** The diffusion-VAE kernels, loaded on first use. */
    private VaeKernels vae;
    private boolean closed;

    CudaOps(CudaDevice dev, Precision precision, boolean ownsDevice) {
        this.dev = dev;
        this.ownsDevice = ownsDevice;
        this.precision = precision;
        dev.bind();
        dev.prefetch(precision);   // NVRTC works while the weights upload and cuDNN plans the first convolutions
        dev.prefetch(CudaWindow.Kernels.SOURCE);   // an upscale's output window, after its first tile
        alloc = dev.memory();
        stream = cu.streamCreateNonBlocking();
        streamId = stream.address();
        copies = new CudaCopies(cu, stream);
        recorder = new CudaRecorder(stream);
        pixels = new CudaPixelOps(cu, dev, precision, stream);
        convolutions = new Convolutions(this, cu, stream, alloc, precision, dev);
    }

    /** Opens device {@code ordinal} in fp32 and a session on it; closing the session closes the device. */
    public static CudaOps open(int ordinal) {
        return open(ordinal, Precision.F32, MemoryOptions.DEFAULT);
    }

    public static CudaOps open(int ordinal, Precision precision) {
        return open(ordinal, precision, MemoryOptions.DEFAULT);
    }

    /** A session on a device of its own (context, kernels, memory), closed with it. */
    public static CudaOps open(int ordinal, Precision precision, MemoryOptions memory) {
        CudaDevice d = CudaDevice.open(ordinal, memory);
        try {
            return new CudaOps(d, precision, true);
        } catch (RuntimeException e) {
            d.close();
            throw e;
        }
    }

    @Override
    public Device device() {
        return dev;
    }

    @Override
    public DeviceMemory memory() {
        return alloc;
    }

    @Override
    public Precision precision() {
        return precision;
    }

    /** Bytes this backend keeps between calls: the convolution workspace and uploaded constants. */
    public long heldBytes() {
        long b = convolutions.heldBytes();
        for (DeviceBuffer c : constants.values()) b += c.bytes();
        return b;
    }

    @Override
    public void trim() {
        if (closed) return;
        dev.bind();
        cu.streamSynchronize(stream);
        convolutions.releaseWorkspace();
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
        return dev.name() + " " + precision;
    }

    @Override
    public Tensor allocate(int n, int h, int w, int c) {
        dev.bind();
        recorder.notWhileCapturing("allocate a " + n + "x" + h + "x" + w + "x" + c + " tensor");
        return Tensor.onDevice(alloc.allocate((long) n * h * w * c * precision.bytes, streamId), precision, n, h, w, c);
    }

    @Override
    public void release(Tensor t) {
        alloc.free(t.device);
    }

    @Override
    public DeviceBuffer allocateArena(long bytes) {
        dev.bind();
        recorder.notWhileCapturing("allocate an arena of " + bytes + " bytes");
        return alloc.allocate(bytes, streamId);
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
        copies.copyIn(dense, d.device.address(), precision);
        return d;
    }

    /** A host copy, waiting for this session's stream up to the copy (not for other sessions). */
    @Override
    public Tensor download(Tensor t) {
        if (t.onHost()) return t;
        dev.bind();
        return copies.download(t);
    }

    /** See {@link CudaCopies#downloadLater}: queued behind this stream's work; {@code t}'s memory may be reused at once. */
    @Override
    public Download downloadLater(Tensor t) {
        if (t.onHost()) return () -> t;
        dev.bind();
        return copies.downloadLater(t);
    }

    /** A session constant (fp32), charged to the weights category and freed when the session closes. */
    private DeviceBuffer upload(float[] a, Precision as) {
        return upload(a, as, "weights", null);
    }

    /** {@code a} on the device in {@code as}, charged to {@code category} (and {@code op}); the caller frees it. */
    DeviceBuffer upload(float[] a, Precision as, String category, String op) {
        dev.bind();
        recorder.notWhileCapturing("upload " + a.length + " values");
        DeviceBuffer b;
        try (var scope = alloc.tag(category, op)) {
            b = alloc.allocate((long) a.length * as.bytes, streamId);
        }
        copies.copyIn(a, b.address(), as);
        return b;
    }

    /** fp32 parameters of epilogues: bias, PReLU slopes, residual scales. */
    DeviceBuffer uploadFloats(float[] a) {
        return upload(a, Precision.F32);
    }

    /** Weights prepared by the device (shared loader, complete on return) in this session's precision; closing them frees them. */
    @Override
    public ConvWeights prepareConv(Op.Conv2d op, float[] kernel, float[] bias, float[] slope) {
        return dev.prepareConv(op, kernel, bias, slope, precision);
    }

    /** A kernel stored in this session's 16-bit precision goes to the device as it is: see {@link CudaDevice}. */
    @Override
    public ConvWeights prepareConv(Op.Conv2d op, dev.headroom.core.TensorData kernel, float[] bias, float[] slope) {
        return dev.prepareConv(op, kernel, bias, slope, precision);
    }

    /** Runs every later convolution with {@code strategy} (FUSED, GRAPH, GEMM or LEGACY), or lets timing choose again (null). */
    void forceConvStrategy(String strategy) {
        convolutions.force(strategy);
    }

    @Override
    public void conv2d(Tensor in, ConvWeights weights, Tensor residual, Tensor out) {
        dev.bind();
        convolutions.run(in, dense(weights), residual, null, out);
    }

    @Override
    public void conv2d(Tensor in, ConvWeights weights, Tensor residual, Tensor outer, Tensor out) {
        dev.bind();
        convolutions.run(in, dense(weights), residual, outer, out);
    }

    /** Weights as the convolution reads them: a compact kernel is expanded now, on this stream. */
    private CudaConvWeights dense(ConvWeights w) {
        return w instanceof CompactWeights c ? expander().expand(c) : (CudaConvWeights) w;
    }

    WeightExpander expander() {
        if (expander == null) expander = new WeightExpander(cu, stream, alloc, precision, dev.expandFunction(precision), recorder);
        return expander;
    }

    /** This session's stream (weight streaming's copies are ordered against it with events). */
    MemorySegment stream() {
        return stream;
    }

    /** A compact kernel's blob, or the dense kernel in this session's precision: what a streaming slot holds. */
    @Override
    public long kernelBytes(Op.Conv2d op, dev.headroom.core.TensorData kernel) {
        return dev.kernelBytes(op, kernel, precision);
    }

    /** Slots on the device, charged now; copies on a stream of their own from pinned host memory ({@link CudaWeightSlots}). */
    @Override
    public dev.headroom.runtime.WeightSlots weightSlots(int count, long slotBytes) {
        dev.bind();
        return CudaWeightSlots.of(dev, this, count, slotBytes);
    }

    /**
     * Marks every recording made so far as stale, because something it points at is about to be
     * freed or replaced (the convolution workspace, a graph); refused while recording.
     */
    void invalidateRecordings(String what) {
        recorder.invalidate(what);
    }

    /** y = act(x + bias) with residuals ({@link CudaPixelOps#epilogue}): the pass {@link Convolutions} runs after an unfused convolution. */
    void epilogue(Tensor x, long bias, Act act, long slope, Tensor residual, float residualScale, Tensor y) {
        pixels.epilogue(x, bias, act, slope, residual, residualScale, y);
    }

    @Override
    public void activation(Tensor in, Act act, float[] slope, Tensor out) {
        long s = slope == null ? 0L : constants.computeIfAbsent(slope, this::uploadFloats).address();
        epilogue(in, 0L, act, s, null, 0f, out);
    }

    @Override
    public void add(Tensor[] ins, Tensor out) {
        pixels.add(ins, out);
    }

    @Override
    public void scale(Tensor in, float factor, Tensor out) {
        pixels.scale(in, factor, out);
    }

    @Override
    public void upsampleNearest(Tensor in, int r, Tensor out) {
        pixels.upsampleNearest(in, r, out);
    }

    @Override
    public void pixelShuffle(Tensor in, int r, ChannelOrder order, Tensor out) {
        pixels.pixelShuffle(in, r, order, out);
    }

    @Override
    public void pixelUnshuffle(Tensor in, int r, ChannelOrder order, Tensor out) {
        pixels.pixelUnshuffle(in, r, order, out);
    }

    @Override
    public void copy(Tensor in, Tensor out) {
        pixels.copy(in, out);
    }

    /** Pinned buffers of exact tiled runs, kept for reuse (up to 16 GiB idle); made on first use. */
    private PinnedPool pinned;

    @Override
    public dev.headroom.runtime.RowStore rowStore(int w, int c) {
        // copies into and out of pinned buffers are queued on the stream: unpinning one waits for them
        if (pinned == null) pinned = new PinnedPool(cu::memAllocHost, p -> {
            cu.streamSynchronize(stream);
            cu.memFreeHost(p);
        }, 16L << 30);
        return new PinnedRows(cu, pinned, this, stream, w, c, pinnedChunk);
    }

    private long pinnedChunk = PinnedRows.CHUNK;

    /** Bytes of the pinned chunks later row stores use (tests make them small, to split bands across chunks). */
    void pinnedChunk(long bytes) {
        pinnedChunk = bytes;
    }

    /** window_kernels.cu, loaded on the first output window. */
    private CudaWindow.Kernels windowKernels;

    @Override
    public dev.headroom.runtime.OutputWindow outputWindow(int width, int capacity, int channels) {
        dev.bind();
        if (windowKernels == null) windowKernels = new CudaWindow.Kernels(cu, dev);
        return new CudaWindow(cu, this, windowKernels, stream, alloc, width, capacity, channels);
    }

    private VaeKernels vae() {
        dev.bind();
        if (vae == null) vae = new VaeKernels(cu, dev.handle(), stream, alloc, precision);
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

    /** Statistics and normalisation on the device, without waiting for it (see {@link VaeKernels}). */
    @Override
    public void groupNorm(Tensor in, Op.GroupNorm op, float[] gamma, float[] beta, Tensor out) {
        vae().groupNorm(in, op, gamma, beta, out);
    }

    @Override
    public NormStats normStats(Op.GroupNorm op, int images) {
        return vae().normStats(op, images);
    }

    @Override
    public void stridedConv(Tensor in, Op.StridedConv op, float[] kernel, float[] bias, Tensor out) {
        vae().stridedConv(in, op, kernel, bias, out);
    }

    @Override
    public void attention(Tensor q, Tensor k, Tensor v, float scale, Tensor out) {
        // attention's chunk and cuBLAS scratch live in the convolutions' workspace (grown if it is smaller), idle meanwhile on this stream
        VaeKernels kernels = vae();
        kernels.attention(q, k, v, scale, out, convolutions.lend(VaeKernels.attentionNeed((long) q.h * q.w, (long) k.h * k.w, v.c, precision)));
    }

    @Override
    public void attention(Tensor q, Tensor k, Tensor v, float scale, Tensor out, DeviceBuffer scratch) {
        // the plan's arena gave attention room for larger chunks (CudaMemoryModel#arenaScratch)
        vae().attentionInArena(q, k, v, scale, out, scratch);
    }

    /** Waits for this session's stream (never the whole device). */
    @Override
    public void synchronize() {
        dev.bind();
        cu.streamSynchronize(stream);
    }

    /** See {@link CudaRecorder#record}. */
    @Override
    public Recording record(Runnable work) {
        dev.bind();
        convolutions.settleBackground();   // the recording replays cuDNN's first choices, not precompiled starts (the background start)
        return recorder.record(work);
    }

    @Override
    public Map<String, Object> diagnostics() {
        Map<String, Object> d = new java.util.LinkedHashMap<>();
        d.put("conv_strategies", convStrategies());
        d.put("conv_choices_recalled", recalledChoices());
        d.put("conv_tuning_ms", Math.round(convolutions.tuningNanos() / 1e4) / 100.0);
        d.put("conv_shapes_timed", convolutions.timedShapes()[0]);
        d.put("conv_timed_adopted", convolutions.timedShapes()[1]);
        d.put("conv_plan_build_ms", Math.round(convolutions.buildNanos() / 1e4) / 100.0);
        d.put("conv_plan_builds", convolutions.builds()[0]);
        d.put("conv_plan_build_max_ms", Math.round(convolutions.builds()[1] / 1e4) / 100.0);
        if (convolutions.adopted() > 0) d.put("conv_background_adopted", convolutions.adopted());
        d.putAll(convolutions.startStats());
        d.put("plan_service", dev.planStats());
        d.put("serialized_plans", dev.serializedPlanStats());
        d.put("conv_timing_ms", Math.round(convolutions.timingNanos() / 1e4) / 100.0);
        d.put("conv_workspace_bytes", convolutions.workspaceBytes());
        d.put("conv_workspace_used_bytes", convolutions.workspaceUsed());
        d.put("kernel_modules_ms", KernelCache.millis());
        if (vae != null && vae.attentionRows() > 0) d.put("attention_chunk_rows", vae.attentionRows());
        if (!graphFailures().isEmpty()) d.put("graph_failures", graphFailures());
        if (!captureFailures().isEmpty()) d.put("capture_failures", captureFailures());
        if (pinned != null) {
            d.put("pinned_bytes_peak", pinned.peakBytes());
            d.put("pinned_buffers_pinned", pinned.pins());
        }
        return d;
    }

    /** Whether a forward pass is being recorded now (nothing may wait for the device). */
    boolean capturing() {
        return recorder.capturing();
    }

    /** Why forward passes could not be recorded as CUDA graphs (empty when every one was). */
    public java.util.List<String> captureFailures() {
        return recorder.failures();
    }

    /**
     * Waits for this session's stream, frees what it holds (recordings, convolution plans and
     * workspace, constants, pinned slots), gives its stream's cached memory back to the device and
     * destroys the stream. A session on a device of its own closes the device too, which audits
     * the allocator: live buffers at that point are leaks. Every step runs even when one before it
     * fails ({@link CloseSteps}); the first failure is thrown.
     */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        CloseSteps.run(
                () -> {
                    dev.bind();
                    cu.streamSynchronize(stream);
                },
                recorder::close,
                convolutions::close,
                () -> {
                    if (expander != null) expander.close();
                },
                () -> {
                    if (vae != null) vae.close();
                },
                () -> {
                    if (windowKernels != null) windowKernels.close();
                },
                () -> {
                    if (pinned != null) pinned.close();
                },
                () -> {
                    for (DeviceBuffer b : List.copyOf(constants.values())) alloc.free(b);
                    constants.clear();
                },
                copies::close,
                () -> {
                    alloc.retireStream(streamId);
                    cu.streamDestroy(stream);
                },
                () -> {
                    if (ownsDevice) dev.close();
                });
    }
}
