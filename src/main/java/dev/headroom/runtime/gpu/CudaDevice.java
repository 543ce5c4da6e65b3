package dev.headroom.runtime.gpu;

import dev.headroom.core.Precision;
import dev.headroom.core.TensorData;
import dev.headroom.core.graph.Op;
import dev.headroom.core.plan.DeviceModel;
import dev.headroom.cuda.Driver;
import dev.headroom.runtime.CloseSteps;
import dev.headroom.runtime.Device;
import dev.headroom.runtime.DeviceBuffer;
import dev.headroom.runtime.Ops;
import dev.headroom.runtime.Session;
import dev.headroom.runtime.memory.DeviceMemory;
import dev.headroom.runtime.memory.MemoryOptions;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * One GPU of this process as a {@link Device}: its primary context (made current on every thread
 * that uses the device, {@link #bind}), the one {@link DeviceMemory} (allocator and ledger) that
 * every session charges, headroom's kernels compiled once per precision (in the background, from
 * the first session's start, {@link #prefetch}), the remembered
 * convolution choices ({@link ConvChoiceStore}, one per fingerprint, shared by sessions), and a
 * loader for weights: uploads on a stream of its own, each complete before it is handed out, so
 * any session's stream can read it without an event. Sessions are {@link CudaOps}.
 *
 * <p>Open one per GPU per process: {@code CudaDevice.open(0, options)}; see {@link Device} for the
 * whole life of a job.
 */
public final class CudaDevice implements Device {
    private static final String[] KERNELS = {"epilogue", "add2", "scale", "upsample", "upsample8", "pixel_shuffle", "pixel_unshuffle"};
    /** The context last made current on each thread, so {@link #bind} costs a field read when nothing changes. */
    private static final ThreadLocal<MemorySegment> CURRENT = new ThreadLocal<>();

    private final Driver cu = Driver.get();
    private final int ordinal, device;
    private final MemorySegment context;
    private final int major, minor;
    /** Each precision's kernels.cu, compiling (or read from the cache) on {@link #COMPILER} from the first session in it on. */
    private final Map<Precision, java.util.concurrent.CompletableFuture<byte[]>> cubins = new EnumMap<>(Precision.class);
    /** Loaded modules and their functions, by precision. */
    private final Map<Precision, MemorySegment> modules = new EnumMap<>(Precision.class);
    private final Map<Precision, Map<String, MemorySegment>> functions = new EnumMap<>(Precision.class);
    /**
     * Compiles kernels off the thread that needs them, so NVRTC runs while weights upload and
     * cuDNN builds the first plans; daemons, one per module asked for at once.
     */
    static final java.util.concurrent.ExecutorService COMPILER = java.util.concurrent.Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "nvrtc");
        t.setDaemon(true);
        return t;
    });
    private final DeviceMemory memory;
    private final String description;
    private final Map<String, ConvChoiceStore> choiceStores = new HashMap<>();
    /** Made at the first ask, under the choiceStores lock; released at close. */
    private SerializedPlans serialized;
    /** The weight loader's stream and copies, used under {@link #loadLock}. */
    private final MemorySegment loadStream;
    private final CudaCopies loads;
    private final Object loadLock = new Object();
    /** expand.cu, loaded at the first compact kernel; its functions by precision. */
    private MemorySegment expandModule;
    private final Map<Precision, MemorySegment> expandFunctions = new EnumMap<>(Precision.class);
    private boolean closed;

    private CudaDevice(int ordinal, MemoryOptions options) {
        this.ordinal = ordinal;
        int count = cu.deviceCount();
        if (ordinal < 0 || ordinal >= count) throw new IllegalArgumentException("CUDA device " + ordinal + " does not exist; this machine has " + count);
        device = cu.device(ordinal);
        dev.headroom.runtime.Startup.mark("cuda_driver_loaded");
        context = cu.retainPrimaryContext(device);
        dev.headroom.runtime.Startup.mark("cuda_context");
        CURRENT.set(context);
        major = cu.attribute(Driver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device);
        minor = cu.attribute(Driver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device);
        memory = CudaMemory.open(cu, ordinal, options);
        description = cu.deviceName(device) + " sm_" + major + minor + " driver " + cu.version();
        loadStream = cu.streamCreateNonBlocking();
        loads = new CudaCopies(cu, loadStream);
        dev.headroom.runtime.Startup.mark("cuda_device_open");
    }

    /** Opens GPU {@code ordinal}: context, kernels (compiled or from the cache), memory. */
    public static CudaDevice open(int ordinal, MemoryOptions options) {
        return new CudaDevice(ordinal, options);
    }

    /** Makes this device's context current on the calling thread (a no-op when it already is). */
    void bind() {
        // The driver's current context belongs to the OS thread. A virtual thread may have moved to another carrier
        // since it last bound (its ThreadLocal moves with it, the context does not), so it binds every time; the
        // server runs device work on platform threads for that reason (Workers, DeviceSlot.onPlatformThread).
        if (Thread.currentThread().isVirtual() || !context.equals(CURRENT.get())) {
            cu.setCurrent(context);
            CURRENT.set(context);
        }
    }

    int ordinal() {
        return ordinal;
    }

    /** The driver's device handle (CUdevice). */
    int handle() {
        return device;
    }

    /** Device name, compute capability and driver: part of every remembered choice's fingerprint. */
    String description() {
        return description;
    }

    /** Starts compiling (or reading from the cache) kernels.cu for {@code p} in the background, once. */
    synchronized java.util.concurrent.CompletableFuture<byte[]> prefetch(Precision p) {
        int bits = switch (p) { case F32 -> 32; case F16 -> 16; case BF16 -> 17; };
        return cubins.computeIfAbsent(p, q -> java.util.concurrent.CompletableFuture.supplyAsync(
                () -> KernelCache.cubin("/dev/headroom/runtime/gpu/kernels.cu", major, minor, cu, "-DHEADROOM_STORAGE=" + bits), COMPILER));
    }

    /** Other modules (window_kernels.cu), compiling in the background from the first {@link #prefetch(String)} on. */
    private final Map<String, java.util.concurrent.CompletableFuture<byte[]>> others = new HashMap<>();

    /** Starts compiling (or reading from the cache) the module {@code resource} in the background, once. */
    synchronized java.util.concurrent.CompletableFuture<byte[]> prefetch(String resource) {
        return others.computeIfAbsent(resource, r -> java.util.concurrent.CompletableFuture.supplyAsync(() -> KernelCache.cubin(r, major, minor, cu), COMPILER));
    }

    /** The cubin of {@code resource}, waiting for its compilation. */
    byte[] cubin(String resource) {
        return join(prefetch(resource));
    }

    private static byte[] join(java.util.concurrent.CompletableFuture<byte[]> f) {
        try {
            return f.join();
        } catch (java.util.concurrent.CompletionException e) {
            if (e.getCause() instanceof RuntimeException r) throw r;
            if (e.getCause() instanceof Error err) throw err;
            throw e;
        }
    }

    /** headroom's kernels (kernels.cu) in {@code p}, by name: waits for their compilation ({@link #prefetch}) and loads them, once. */
    synchronized Map<String, MemorySegment> functions(Precision p) {
        Map<String, MemorySegment> fns = functions.get(p);
        if (fns != null) return fns;
        dev.headroom.runtime.Startup.mark("kernels_asked");
        byte[] cubin = join(prefetch(p));
        bind();
        MemorySegment module = cu.moduleLoad(cubin);
        dev.headroom.runtime.Startup.mark("kernels_loaded");
        modules.put(p, module);
        String suffix = "_" + switch (p) { case F32 -> "f32"; case F16 -> "f16"; case BF16 -> "bf16"; };
        fns = new HashMap<>();
        for (String k : KERNELS) fns.put(k, cu.function(module, k + suffix));
        functions.put(p, fns);
        return fns;
    }

    /** expand.cu's kernel for {@code p} (compiled, or from the cache, on first use). */
    synchronized MemorySegment expandFunction(Precision p) {
        bind();
        if (expandModule == null) {
            int major = cu.attribute(Driver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device);
            int minor = cu.attribute(Driver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device);
            expandModule = cu.moduleLoad(KernelCache.cubin("/dev/headroom/runtime/gpu/expand.cu", major, minor, cu));
        }
        return expandFunctions.computeIfAbsent(p, q -> cu.function(expandModule, "expand_" + switch (q) {
            case F32 -> "f32";
            case F16 -> "f16";
            case BF16 -> "bf16";
        }));
    }

    /** cuDNN plans, their handles and plan workers, shared by this device's sessions; made at the first session that asks. */
    private PlanService<ConvGraph> plans;

    synchronized PlanService<ConvGraph> plans() {
        if (closed) throw new IllegalStateException(name() + " is closed");
        if (plans == null) plans = CudnnPlans.service(this);
        return plans;
    }

    /** The plan service's counts ({@link PlanService#stats}), empty before any session asked for it. */
    public synchronized Map<String, Object> planStats() {
        return plans == null ? Map.of() : plans.stats();
    }

    /** Serialised cuDNN plans shared with every other open device of this kind ({@link SerializedPlans}); made at the first ask. */
    SerializedPlans serializedPlans() {
        synchronized (choiceStores) {
            if (serialized == null) {
                serialized = SerializedPlans.acquire(dev.headroom.runtime.CacheDir.root().resolve("conv-plans"),
                        description + " cudnn " + dev.headroom.cuda.Cudnn.get().version());
            }
            return serialized;
        }
    }

    /** The serialised plans' counts ({@link SerializedPlans#stats}), empty before any session asked for them. */
    Map<String, Object> serializedPlanStats() {
        synchronized (choiceStores) {
            return serialized == null ? Map.of() : serialized.stats();
        }
    }

    /** The store of remembered convolution choices for {@code fingerprint}: shared by this device's sessions and every other open device of its kind ({@link ConvChoiceStore#acquire}). */
    ConvChoiceStore choiceStore(Path dir, String fingerprint) {
        synchronized (choiceStores) {
            return choiceStores.computeIfAbsent(dir.toAbsolutePath() + "\n" + fingerprint, f -> ConvChoiceStore.acquire(dir, fingerprint));
        }
    }

    @Override
    public String name() {
        return "cuda:" + ordinal;
    }

    @Override
    public DeviceMemory memory() {
        return memory;
    }

    @Override
    public boolean accelerator() {
        return true;
    }

    @Override
    public Precision defaultPrecision() {
        return Precision.F16;
    }

    @Override
    public boolean supports(Precision p) {
        return true;
    }

    @Override
    public Session openSession(Precision precision) {
        bind();
        return new CudaOps(this, precision, false);
    }

    /**
     * Uploads {@code values} converted to {@code as} on the loader's stream and waits for that
     * stream alone, so the copy is complete when this returns. Charged to what the calling thread
     * charges weights to ({@link DeviceMemory#chargeTo}, else the weights category).
     */
    DeviceBuffer upload(float[] values, Precision as) {
        bind();
        synchronized (loadLock) {
            DeviceBuffer b = memory.allocate((long) values.length * as.bytes, loadStream.address());
            try {
                loads.copyIn(values, b.address(), as);
                cu.streamSynchronize(loadStream);
            } catch (RuntimeException e) {
                memory.free(b);
                throw e;
            }
            return b;
        }
    }

    /**
     * Weights in KRSC (cout, kh, kw, cin) order and {@code precision}; bias and PReLU slopes in
     * fp32. Charged to the weights category unless the caller charges them elsewhere (a model's
     * own node): see {@link DeviceMemory#chargeTo}.
     */
    @Override
    public Ops.ConvWeights prepareConv(Op.Conv2d op, float[] kernel, float[] bias, float[] slope, Precision precision) {
        int kh = op.kh(), kw = op.kw(), ci = op.cin(), co = op.cout();
        float[] krsc = new float[kernel.length];
        for (int y = 0; y < kh; y++)
            for (int x = 0; x < kw; x++)
                for (int i = 0; i < ci; i++)
                    for (int o = 0; o < co; o++) krsc[((o * kh + y) * kw + x) * ci + i] = kernel[((y * kw + x) * ci + i) * co + o];
        return uploadConv(op, () -> upload(krsc, precision), bias, slope, (k, b, s) -> new CudaConvWeights(op, k, b, s, memory));
    }

    /**
     * A kernel stored in the session's 16-bit precision goes to the device as it is (reordered to
     * KRSC on the host, never widened); any other is widened and converted as above.
     */
    @Override
    public Ops.ConvWeights prepareConv(Op.Conv2d op, TensorData kernel, float[] bias, float[] slope, Precision precision) {
        if (kernel.compact() != null) return prepareCompact(op, kernel, bias, slope);
        if (kernel.stored() != precision || precision == Precision.F32) return prepareConv(op, kernel.data(), bias, slope, precision);
        int kh = op.kh(), kw = op.kw(), ci = op.cin(), co = op.cout();
        short[] hwio = kernel.halves(), krsc = new short[hwio.length];
        for (int y = 0; y < kh; y++)
            for (int x = 0; x < kw; x++)
                for (int i = 0; i < ci; i++)
                    for (int o = 0; o < co; o++) krsc[((o * kh + y) * kw + x) * ci + i] = hwio[((y * kw + x) * ci + i) * co + o];
        return uploadConv(op, () -> uploadRaw(MemorySegment.ofArray(krsc), (long) krsc.length * 2), bias, slope,
                (k, b, s) -> new CudaConvWeights(op, k, b, s, memory));
    }

    /**
     * A compact kernel (int8, fp8, NF4) goes to the device compact ({@link CompactKernel}'s blob)
     * and is expanded by each session just before use ({@link WeightExpander}): device memory holds
     * the codes, not the expanded values.
     */
    private Ops.ConvWeights prepareCompact(Op.Conv2d op, TensorData kernel, float[] bias, float[] slope) {
        CompactKernel layout = CompactKernel.of(op, kernel);
        return uploadConv(op, () -> uploadRaw(layout.blob(), layout.bytes()), bias, slope,
                (k, b, s) -> new CompactWeights(layout, k, b, s, memory, true));
    }

    /** What a convolution's uploaded kernel, bias and slopes become (bias and slopes may be null). */
    private interface ConvBuffers<W> {
        W of(DeviceBuffer kernel, DeviceBuffer bias, DeviceBuffer slope);
    }

    /**
     * Uploads a convolution's kernel (by {@code kernel}), then its bias and slopes in fp32, charged
     * as weights: to the model's node where the caller charges one ({@link DeviceMemory#weightsScope}),
     * else to the weights category (without the scope they went to the thread's default, activations).
     * Nothing stays allocated when an upload fails.
     */
    private <W> W uploadConv(Op.Conv2d op, java.util.function.Supplier<DeviceBuffer> kernel, float[] bias, float[] slope, ConvBuffers<W> made) {
        DeviceBuffer k = null, b = null, s = null;
        try (var scope = memory.weightsScope(op.weight())) {
            k = kernel.get();
            b = bias == null ? null : upload(bias, Precision.F32);
            s = slope == null ? null : upload(slope, Precision.F32);
            return made.of(k, b, s);
        } catch (RuntimeException e) {
            for (DeviceBuffer d : new DeviceBuffer[] {k, b, s}) if (d != null) memory.free(d);
            throw e;
        }
    }

    /**
     * {@code bytes} on the loader's stream, charged as the calling thread charges (weights kept
     * for sessions of any stream: a shared model's streaming slots, {@link CudaWeightSlots}).
     */
    DeviceBuffer allocateOnLoadStream(long bytes) {
        bind();
        synchronized (loadLock) {
            return memory.allocate(bytes, loadStream.address());
        }
    }

    /** A compact kernel's blob, or the dense kernel in {@code precision}: what a streaming slot holds. */
    @Override
    public long kernelBytes(Op.Conv2d op, TensorData kernel, Precision precision) {
        return kernel.compact() != null ? CompactKernel.of(op, kernel).bytes() : kernel.count() * precision.bytes;
    }

    /** The rates measured on an H200 ({@link dev.headroom.core.residency.StreamSplit.Cost#H200}), for every card until others are measured. */
    @Override
    public dev.headroom.core.residency.StreamSplit.Cost streamCost(Precision precision) {
        return dev.headroom.core.residency.StreamSplit.Cost.H200;
    }

    /** Slots on the device for a model shared by sessions of {@code precision}, each pass bound to its session ({@link CudaWeightSlots}). */
    @Override
    public dev.headroom.runtime.WeightSlots weightSlots(Precision precision, int count, long slotBytes) {
        bind();
        return CudaWeightSlots.shared(this, precision, count, slotBytes);
    }

    /** Uploads {@code bytes} of values already in their device form, as {@link #upload} does. */
    DeviceBuffer uploadRaw(MemorySegment values, long bytes) {
        bind();
        synchronized (loadLock) {
            DeviceBuffer b = memory.allocate(bytes, loadStream.address());
            try {
                loads.copyIn(values, b.address(), bytes);
                cu.streamSynchronize(loadStream);
            } catch (RuntimeException e) {
                memory.free(b);
                throw e;
            }
            return b;
        }
    }

    /**
     * Runs {@code work} (copies queued on the loader's stream, which it is given) under the
     * loader's lock, then waits for that stream alone, even when {@code work} failed: what it
     * queued has finished when this returns.
     */
    <T> T onLoadStream(java.util.function.Function<MemorySegment, T> work) {
        bind();
        synchronized (loadLock) {
            try {
                return work.apply(loadStream);
            } finally {
                cu.streamSynchronize(loadStream);
            }
        }
    }

    /** A pinned copy of the weights in their device layout, restored by one copy (see {@link CudaHostCopy}). */
    @Override
    public dev.headroom.runtime.HostCopy copyToHost(Ops.ConvWeights[] conv) {
        return CudaHostCopy.of(this, cu, conv);
    }

    @Override
    public DeviceModel memoryModel(Precision precision) {
        return new CudaMemoryModel(precision);
    }

    /** Frees the loader, the kernels and the memory (auditing it for leaks), and lets go of the context. Close every session first. */
    @Override
    public void close() {
        PlanService<ConvGraph> service;
        synchronized (this) {
            if (closed) return;
            closed = true;   // plans() makes no service after this
            service = plans;
        }
        bind();
        List<Runnable> steps = new ArrayList<>();
        if (service != null) steps.add(service::close);   // its graphs and handles before the context goes
        steps.add(() -> cu.streamSynchronize(loadStream));
        steps.add(loads::close);
        steps.add(() -> {
            memory.retireStream(loadStream.address());
            cu.streamDestroy(loadStream);
        });
        for (MemorySegment m : modules.values()) steps.add(() -> cu.moduleUnload(m));
        if (expandModule != null) steps.add(() -> cu.moduleUnload(expandModule));
        steps.add(() -> {
            synchronized (choiceStores) {
                choiceStores.values().forEach(ConvChoiceStore::release);
                choiceStores.clear();
                if (serialized != null) SerializedPlans.release(serialized);
                serialized = null;
            }
        });
        steps.add(memory::close);   // the allocator's audit runs whatever failed before it
        steps.add(() -> cu.releasePrimaryContext(device));
        CloseSteps.run(steps.toArray(Runnable[]::new));
    }
}
