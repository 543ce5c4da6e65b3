package dev.headroom.runtime;

import dev.headroom.core.Precision;
import dev.headroom.core.graph.Op;
import dev.headroom.core.plan.DeviceModel;
import dev.headroom.runtime.memory.DeviceMemory;

/**
 * One device of this process (a GPU, or the CPU): what every job on it shares. It owns the
 * context, the one ledger and caching allocator ({@link #memory}), the compiled kernels and the
 * remembered convolution choices. Work runs in {@link Session}s, one per running job or worker,
 * opened from any thread; a model's weights are prepared here once and shared by every session of
 * their precision ({@link #prepareConv}; the residency manager, {@link Residency}, decides how long
 * they stay).
 *
 * <p>Usage: one device, a residency manager over it, and a session per worker thread:
 * <pre>{@code
 * try (Device gpu = CudaDevice.open(0, MemoryOptions.DEFAULT);          // or new CpuDevice(options)
 *      Residency models = new Residency(gpu, 4L << 30)) {                // host cache of 4 GiB for evicted weights
 *     Residency.Loader rdn = () -> {                                     // read only on first use, or after the host copy went
 *         Model m = ModelLoader.load(file);
 *         return new Residency.Source(m.graph(), m.weights(), m.valueRange());
 *     };
 *     // on each worker thread, for each job:
 *     try (Session s = gpu.openSession(Precision.F16);                   // stream, cuDNN/cuBLAS handles, workspace
 *          Residency.Lease m = models.acquire("rdn-x2", Priority.NORMAL, rdn, s);   // shared weights, never evicted while held
 *          GraphRunner runner = new GraphRunner(m.graph(), m.weights(), s);
 *          var job = gpu.memory().job("job-17", Long.MAX_VALUE)) {     // this job's activations, audited on close
 *         FloatImage out = new TiledUpscaler(runner, m.valueRange()).upscale(image, 256, 16, null);
 *     }
 *     // a model too big for its share: acquire(name, priority, loader, s, weightBudget) streams what does not
 *     // fit (WeightStream.autoBudget says how much fits beside a tile); still one copy, shared and evicted as one
 *     models.makeRoom(bytes);                                            // before admitting a job that needs bytes
 * }
 * }</pre>
 * A session is used by one thread at a time (any thread: the device makes its context current
 * there). Sessions of one device may differ in precision; all charge the same ledger.
 */
public interface Device extends AutoCloseable {
    /** Short name for reports: "cpu", "cuda:0". */
    String name();

    /** The device's one allocator and ledger, shared by its sessions. */
    DeviceMemory memory();

    /** A GPU: tiles are batched while the plan fits (the CPU gains nothing from batching). */
    boolean accelerator();

    /** The precision a job runs in when none is asked for: fp16 on a GPU, fp32 on the CPU. */
    Precision defaultPrecision();

    /** Whether sessions may compute in {@code p}. */
    boolean supports(Precision p);

    /** A new session computing in {@code precision}; close it when the job or worker is done. */
    Session openSession(Precision precision);

    /** A new session in the {@link #defaultPrecision}. */
    default Session openSession() {
        return openSession(defaultPrecision());
    }

    /**
     * A convolution's weights prepared for sessions of {@code precision} (on a GPU: a device copy
     * in that precision, complete when this returns, so any session's stream may read it), charged
     * to the ledger node the calling thread charges to (see {@link DeviceMemory#chargeTo}).
     */
    Ops.ConvWeights prepareConv(Op.Conv2d op, float[] kernel, float[] bias, float[] slope, Precision precision);

    /** As above from a kernel tensor in its stored precision (16-bit kernels may stay 16-bit; by default widened). */
    default Ops.ConvWeights prepareConv(Op.Conv2d op, dev.headroom.core.TensorData kernel, float[] bias, float[] slope, Precision precision) {
        return prepareConv(op, kernel.data(), bias, slope, precision);
    }

    /**
     * A host copy of prepared convolution weights (indexed by node; nulls allowed) in this
     * device's own layout, for the residency manager's host cache (see {@link HostCopy}); the
     * weights themselves stay as they are. Null when the host memory cannot be had (pinned memory
     * refused): the model then goes back to its file when evicted.
     */
    HostCopy copyToHost(Ops.ConvWeights[] conv);

    /**
     * Bytes {@code kernel} takes on this device once prepared for sessions of {@code precision}
     * (compact kernels compact, 16-bit ones 16-bit where the device keeps them so): what weight
     * streaming budgets and copies (see {@link Ops#kernelBytes}).
     */
    default long kernelBytes(Op.Conv2d op, dev.headroom.core.TensorData kernel, Precision precision) {
        return kernel.count() * Float.BYTES;
    }

    /**
     * {@code count} prefetch slots of {@code slotBytes} for a streamed model shared by the
     * sessions of {@code precision} ({@link WeightSlots}; each pass binds them to its session),
     * charged now to the node the calling thread charges weights to. Refused by a device that
     * cannot stream.
     */
    default WeightSlots weightSlots(Precision precision, int count, long slotBytes) {
        throw new UnsupportedOperationException(name() + " cannot stream weights");
    }

    /**
     * The copy and compute rates weight streaming's planner weighs a split with
     * ({@link dev.headroom.core.residency.StreamSplit#plan}); without them every copy counts as exposed.
     */
    default dev.headroom.core.residency.StreamSplit.Cost streamCost(Precision precision) {
        return dev.headroom.core.residency.StreamSplit.Cost.NONE;
    }

    /** What a session of {@code precision} allocates besides planned activations, for the planner. */
    DeviceModel memoryModel(Precision precision);

    /** Frees what the device holds and audits its memory; close every session first. */
    @Override
    void close();
}
