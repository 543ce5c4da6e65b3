package dev.headroom.runtime;

import dev.headroom.core.graph.Act;
import dev.headroom.core.graph.ChannelOrder;
import dev.headroom.core.graph.Op;
import dev.headroom.core.plan.DeviceModel;

/**
 * The op contracts every backend implements. Outputs are passed in, already shaped, and may be
 * channel slices of a larger buffer; inputs may be slices too. No op writes to its inputs.
 *
 * <p>Weights are prepared once per convolution ({@link #prepareConv}) into whatever layout the
 * backend's kernel wants, and then used for every tile.
 */
public interface Ops {

    /** A convolution's weights in the backend's layout; closing frees any device copy. */
    interface ConvWeights extends AutoCloseable {
        Op.Conv2d op();

        @Override
        default void close() {}
    }

    /** This backend's memory (allocator, ledger, trace), or null for a backend that keeps none (the reference). */
    default dev.headroom.runtime.memory.DeviceMemory memory() {
        return null;
    }

    /** Short name for reports: "cpu", "cuda:0". */
    default String name() {
        return "cpu";
    }

    /** A new dense (n, h, w, c) tensor in this backend's memory; contents undefined. */
    default Tensor allocate(int n, int h, int w, int c) {
        return Tensor.allocate(n, h, w, c);
    }

    /** Gives back a tensor {@link #allocate} returned (the whole buffer, not a slice). */
    default void release(Tensor t) {}

    /** What this backend allocates besides planned activations, for the planner. */
    default DeviceModel memoryModel() {
        return HostArena.MODEL;
    }

    /** One block of {@code bytes} for a planned arena of activations (the executor's one allocation per run). */
    default DeviceBuffer allocateArena(long bytes) {
        return memory() != null ? memory().allocate(bytes) : HostArena.allocate(bytes);
    }

    default void releaseArena(DeviceBuffer arena) {
        if (memory() != null) memory().free(arena);
    }

    /** A dense (n, h, w, c) tensor at {@code byteOffset} inside {@code arena}; it is never released on its own. */
    default Tensor view(DeviceBuffer arena, long byteOffset, int n, int h, int w, int c) {
        return ((HostArena) arena).view(byteOffset, n, h, w, c);
    }

    /** This backend's copy of a host tensor (the same tensor on the CPU). */
    default Tensor upload(Tensor host) {
        return host;
    }

    /**
     * Work recorded once and replayed with one call (a CUDA graph): the same device pointers, the
     * same kernels, new data. Owned by whoever asked for it; closing frees the recording.
     */
    interface Recording extends AutoCloseable {
        /** Issues the recorded work again; false when it can no longer be replayed (record again). */
        boolean replay();

        @Override
        void close();
    }

    /**
     * Records {@code work} for {@link Recording#replay} without running it, or returns null where
     * this backend cannot (then the caller runs {@code work} itself). {@code work} must already
     * have run once with the same pointers, so that everything it sets up on a first call
     * (algorithm choices, workspace, constants) exists: a recording allocates nothing.
     */
    default Recording record(Runnable work) {
        return null;
    }

    /** Waits until all work issued so far is done (nothing to wait for on the CPU). */
    default void synchronize() {}

    /** A host copy of one of this backend's tensors (the same tensor on the CPU). */
    default Tensor download(Tensor t) {
        return t;
    }

    /** A copy to the host under way; {@link #get} waits for it (and only for it). */
    interface Download {
        Tensor get();
    }

    /**
     * Starts {@link #download} behind the work issued so far and returns without waiting, so the
     * host can do other work meanwhile; {@code t}'s memory may be reused by later work at once.
     * Where copies are not queued (the CPU) the copy is made now.
     */
    default Download downloadLater(Tensor t) {
        Tensor h = download(t);
        return () -> h;
    }

    /**
     * @param kernel (kh, kw, cin, cout), row-major
     * @param bias   (cout) or null
     * @param slope  PReLU slopes (cout) when {@code op.act()} is PReLU, else null
     */
    ConvWeights prepareConv(Op.Conv2d op, float[] kernel, float[] bias, float[] slope);

    /**
     * As {@link #prepareConv(Op.Conv2d, float[], float[], float[])} from a kernel tensor (kh, kw,
     * cin, cout) in its stored precision: a backend that keeps or computes in 16 bits takes fp16
     * and bf16 kernels as they are; by default they are widened to fp32 here.
     */
    default ConvWeights prepareConv(Op.Conv2d op, dev.headroom.core.TensorData kernel, float[] bias, float[] slope) {
        return prepareConv(op, kernel.data(), bias, slope);
    }

    /**
     * Bytes {@code kernel} takes on this backend's device once prepared (compact kernels compact,
     * 16-bit ones 16-bit where the backend keeps them so): what weight streaming budgets and copies.
     */
    default long kernelBytes(Op.Conv2d op, dev.headroom.core.TensorData kernel) {
        return kernel.count() * Float.BYTES;
    }

    /**
     * {@code count} prefetch slots of {@code slotBytes} each for streamed weights, charged to the
     * ledger now ({@link WeightSlots}); refused by a backend that cannot stream.
     */
    default WeightSlots weightSlots(int count, long slotBytes) {
        throw unsupported("weight streaming");
    }

    /**
     * out = act(conv(in, kernel) + bias), or with a residual (the op's residualScale is not 0)
     * out = residualScale * act(conv(in, kernel) + bias) + residual. in is (N,H,W,cin); out and
     * residual are (N,H',W',cout).
     */
    void conv2d(Tensor in, ConvWeights w, Tensor residual, Tensor out);

    default void conv2d(Tensor in, ConvWeights w, Tensor out) {
        conv2d(in, w, null, out);
    }

    /**
     * With an outer residual (the op's outerScale is not 0):
     * out = outerScale * (residualScale * act(conv(in, kernel) + bias) + residual) + outer.
     * By default the convolution, then a scale and an add in place, exactly what the unfused graph
     * computes; a backend that can do it in one pass overrides this.
     */
    default void conv2d(Tensor in, ConvWeights w, Tensor residual, Tensor outer, Tensor out) {
        conv2d(in, w, residual, out);
        if (outer == null) return;
        scale(out, w.op().outerScale(), out);
        add(new Tensor[] {out, outer}, out);
    }

    /** out = act(in); slope is the PReLU slope per channel or null. */
    void activation(Tensor in, Act act, float[] slope, Tensor out);

    /** out = sum of ins, all the same shape. */
    void add(Tensor[] ins, Tensor out);

    /** out = factor * in. */
    void scale(Tensor in, float factor, Tensor out);

    /** out (N,H*r,W*r,C) = nearest upsample of in (N,H,W,C). */
    void upsampleNearest(Tensor in, int r, Tensor out);

    /** out (N,H*r,W*r,C) from in (N,H,W,C*r*r). */
    void pixelShuffle(Tensor in, int r, ChannelOrder order, Tensor out);

    /** out (N,H/r,W/r,C*r*r) from in (N,H,W,C). */
    void pixelUnshuffle(Tensor in, int r, ChannelOrder order, Tensor out);

    /** out = in (same shape), e.g. into a channel slice. */
    void copy(Tensor in, Tensor out);

    // The diffusion-VAE ops. Defaults refuse, so a backend without them still compiles and says so.

    /**
     * GroupNorm statistics of in (N,H,W,C) in {@code groups} groups: adds to {@code acc}, per
     * (image, group) at {@code (b * groups + g) * 3}, the count, sum and sum of squares of its
     * values. Sums are fp32 within a row of pixels and double across rows, so statistics gathered
     * band by band equal the whole image's (up to double rounding).
     */
    default void groupNormStats(Tensor in, int groups, double[] acc) {
        throw unsupported("group norm");
    }

    /**
     * out = (in - mean) * rstd * gamma + beta, then SiLU when {@code op.silu()}; {@code meanRstd}
     * holds (mean, rstd) per (image, group) at {@code (b * groups + g) * 2}.
     */
    default void groupNormApply(Tensor in, Op.GroupNorm op, float[] meanRstd, float[] gamma, float[] beta, Tensor out) {
        throw unsupported("group norm");
    }

    /** GroupNorm on a whole image: statistics, then {@link #groupNormApply}. */
    default void groupNorm(Tensor in, Op.GroupNorm op, float[] gamma, float[] beta, Tensor out) {
        try (NormStats s = normStats(op, in.n)) {
            s.add(in);
            s.apply(in, gamma, beta, out);
        }
    }

    /**
     * A GroupNorm's statistics gathered band by band where the backend computes (on a GPU they
     * stay on the device: no wait for the host between bands or layers); by default host arrays
     * filled by {@link #groupNormStats}.
     */
    default NormStats normStats(Op.GroupNorm op, int images) {
        return new HostNormStats(this, op, images);
    }

    /**
     * Statistics of one GroupNorm over {@code images} images, added band by band, rows top to
     * bottom: the same sums in the same order as the whole image's (see {@link #groupNormStats}).
     */
    interface NormStats extends AutoCloseable {
        /** Adds the rows of {@code band} (N,h,W,C), which follow the rows added before. */
        void add(Tensor band);

        /** out = the GroupNorm of {@code in} (then SiLU when the op says) with the statistics of every row added so far. */
        void apply(Tensor in, float[] gamma, float[] beta, Tensor out);

        @Override
        void close();
    }

    /** out (N,H',W',cout) = conv(in, kernel (k,k,cin,cout)) + bias with the op's stride and padding. */
    default void stridedConv(Tensor in, Op.StridedConv op, float[] kernel, float[] bias, Tensor out) {
        throw unsupported("strided convolution");
    }

    /** out = softmax(q k^T * scale) v over the h*w positions of each image; q, k, v, out all (N,H,W,C). */
    default void attention(Tensor q, Tensor k, Tensor v, float scale, Tensor out) {
        throw unsupported("attention");
    }

    /**
     * {@link #attention}, with {@code scratch} (device memory of the plan's arena, free while this
     * runs; {@link dev.headroom.core.plan.DeviceModel#arenaScratch}) for its chunks instead of memory of its own.
     */
    default void attention(Tensor q, Tensor k, Tensor v, float scale, Tensor out, DeviceBuffer scratch) {
        attention(q, k, v, scale, out);
    }

    /**
     * A tiled upscale's output accumulator in this backend's memory, {@code capacity} rows of
     * {@code width} pixels of {@code channels} fp32 values, blended and converted to samples where
     * the tiles' outputs are ({@link OutputWindow}); null where tiles come home and the host blends
     * (the CPU, whose tiles are already home).
     */
    default OutputWindow outputWindow(int width, int capacity, int channels) {
        return null;
    }

    /** Where an exact tiled run keeps a (1, H, w, c) intermediate off the device (host float arrays unless the backend has better). */
    default RowStore rowStore(int w, int c) {
        return new HostRows(this, w, c);
    }

    private UnsupportedOperationException unsupported(String what) {
        return new UnsupportedOperationException("backend " + name() + " has no " + what);
    }
}
