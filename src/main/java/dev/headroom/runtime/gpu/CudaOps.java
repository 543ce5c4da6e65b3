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
import dev.headroom.core.graph.Padding;
import dev.headroom.cuda.CudaException;
import dev.headroom.cuda.Cudnn;
import dev.headroom.cuda.CudnnGraph;
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
 * workspace and its algorithm search, comes from one {@link DeviceMemory}.
 *
 * <p>Convolution: on its first call each shape (with its strides and epilogue) times the ways it
 * can run and keeps the fastest ({@link Strategy}): in fp16 that is one cuDNN graph (runtime-fused
 * convolution + bias + activation + scaled residuals, reading and writing channel slices in place;
 * {@link ConvGraph}), or a graph for the convolution alone then headroom's epilogue kernel, or the
 * legacy API on a packed input then the epilogue kernel. fp32 keeps the legacy API with FMA math,
 * so it stays true fp32. On the H100 every RRDBNet fp16 shape chose the fused graph, and the
 * forward pass of a 256 tile fell from 38 ms (legacy, same run) to 10.9 ms.
 */
public final class CudaOps implements Ops, AutoCloseable {
    private static final String[] KERNELS = {"epilogue", "add2", "scale", "upsample", "pixel_shuffle", "pixel_unshuffle"};

    private final Driver cu = Driver.get();
    private final Cudnn dnn = Cudnn.get();

    private final int ordinal, device;
    private final Precision precision;
    private final MemorySegment module, handle;
    private final MemorySegment stream;
    private final Map<String, MemorySegment> fns = new HashMap<>();
    private final DeviceMemory alloc;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment alphaBeta;
    private final Map<String, ConvPlan> plans = new HashMap<>();
    private final Map<Key, Choice> choices = new HashMap<>();
    /** Choices from earlier processes on this kind of device, libraries and precision. */
    private final ConvChoiceStore remembered;
    private int recalled;
    private final Map<Float, DeviceBuffer> scalars = new HashMap<>();
    /** Graphs and plans cuDNN refused, with its reason (`bench --json` lists them as graph_failures). */
    private final java.util.List<String> graphFailures = new java.util.ArrayList<>();
    /** Plans timed per graph; cuDNN's heuristics rank them, the clock decides. */
    private static final int MAX_PLANS = 8;
    private final boolean graphApi = !"0".equals(System.getenv("HEADROOM_CUDNN_GRAPH"));
    private final Map<float[], DeviceBuffer> constants = new IdentityHashMap<>();
    private DeviceBuffer workspace;
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

    /** Descriptors and algorithm for one convolution shape. */
    private record ConvPlan(MemorySegment x, MemorySegment w, MemorySegment conv, MemorySegment y, int algo, long workspace) {}

    /** Weights on the device in KRSC (cout, kh, kw, cin) order. */
    private final class Prepared implements ConvWeights {
        final Op.Conv2d op;
        final DeviceBuffer kernel, bias, slope;

        Prepared(Op.Conv2d op, DeviceBuffer kernel, DeviceBuffer bias, DeviceBuffer slope) {
            this.op = op;
            this.kernel = kernel;
            this.bias = bias;
            this.slope = slope;
        }

        @Override
        public Op.Conv2d op() {
            return op;
        }

        @Override
        public void close() {
            alloc.free(kernel);
            if (bias != null) alloc.free(bias);
            if (slope != null) alloc.free(slope);
        }
    }

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
        handle = dnn.createHandle(stream);
        alloc = CudaMemory.open(cu, ordinal, memory);
        remembered = ConvChoiceStore.open(dev.headroom.runtime.CacheDir.root().resolve("conv-choices"),
                cu.deviceName(device) + " sm_" + major + minor + " driver " + cu.version() + " cudnn " + dnn.version() + " " + precision
                        + (graphApi ? "" : " legacy-only"));
        alphaBeta = arena.allocate(JAVA_FLOAT, 2);
        alphaBeta.setAtIndex(JAVA_FLOAT, 0, 1f);
        alphaBeta.setAtIndex(JAVA_FLOAT, 1, 0f);
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
        long b = workspace == null ? 0 : workspace.bytes();
        for (DeviceBuffer c : constants.values()) b += c.bytes();
        for (DeviceBuffer c : scalars.values()) b += c.bytes();
        return b;
    }

    /** How many convolution shapes run each way (FUSED, GRAPH, LEGACY), and why graphs were refused. */
    public Map<String, Integer> convStrategies() {
        Map<String, Integer> n = new java.util.TreeMap<>();
        for (Choice c : choices.values()) n.merge(c.strategy().name(), 1, Integer::sum);
        return n;
    }

    /** How many convolution shapes took their strategy from an earlier process instead of timing it. */
    public int recalledChoices() {
        return recalled;
    }

    public java.util.List<String> graphFailures() {
        return java.util.List.copyOf(graphFailures);
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
        PinnedSlots.Slot slot = slots.take(hostBytes(t));
        try {
            // synchronous: on the legacy stream, which waits for this backend's stream
            cu.copyDtoH(slot.memory(), t.device.address(), hostBytes(t));
            return fromSlot(slot, t);
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
        PinnedSlots.Slot slot = slots.take(hostBytes(t));
        try {
            cu.copyDtoHAsync(slot.memory(), t.device.address(), hostBytes(t), stream);
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
                    slots.await(slot);
                    done = fromSlot(slot, t);
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

    /** A host tensor of {@code t}'s shape from the values copied into {@code slot}. */
    private Tensor fromSlot(PinnedSlots.Slot slot, Tensor t) {
        Tensor h = Tensor.allocate(t.n, t.h, t.w, t.c);
        toFloats(slot.memory(), t.precision, h.data, h.data.length);
        return h;
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

    /** fp32 parameters of epilogues: bias, PReLU slopes. */
    private DeviceBuffer upload(float[] a) {
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
        return new Prepared(op, upload(krsc, precision), bias == null ? null : upload(bias), slope == null ? null : upload(slope));
    }

    /**
     * How one convolution shape runs, chosen by timing the candidates on its first call:
     * FUSED, one cuDNN graph for convolution and epilogue reading and writing slices in place;
     * GRAPH, a cuDNN graph for the convolution alone (input slice read in place) then headroom's
     * epilogue kernel; LEGACY, the legacy API on a packed input then the epilogue kernel.
     */
    private enum Strategy { FUSED, GRAPH, LEGACY }

    /** Set by tests to run every convolution one way; null lets the clock choose. */
    private Strategy forced;

    /** Runs every later convolution with {@code strategy} (FUSED, GRAPH or LEGACY), or lets timing choose again (null). */
    void forceConvStrategy(String strategy) {
        epoch++;
        for (Choice c : choices.values()) if (c.graph() != null) c.graph().close();
        choices.clear();
        forced = strategy == null ? null : Strategy.valueOf(strategy);
    }

    private record Choice(Strategy strategy, ConvGraph graph, double micros) {}

    @Override
    public void conv2d(Tensor in, ConvWeights weights, Tensor residual, Tensor out) {
        conv2d(in, weights, residual, null, out);
    }

    @Override
    public void conv2d(Tensor in, ConvWeights weights, Tensor residual, Tensor outer, Tensor out) {
        Prepared p = (Prepared) weights;
        Call call = new Call(p, in, residual, outer, out);
        ensureWorkspace(CudaMemoryModel.workspaceCap(in.bytes()));
        Key key = call.key();
        Choice choice = choices.get(key);
        if (choice == null) {
            choice = recall(call, key);
            if (choice == null) {
                choice = choose(call);
                if (forced == null) remember(key, choice);
            }
            choices.put(key, choice);
        }
        run(choice.strategy(), choice.graph(), 0, call);
    }

    /** One convolution call's operands; {@code residual} and {@code outer} may be null. */
    private record Call(Prepared p, Tensor in, Tensor residual, Tensor outer, Tensor out) {
        Key key() {
            Op.Conv2d op = p.op;
            return new Key(op.kh(), op.kw(), op.cin(), op.cout(), op.padding(), in.n, in.h, in.w, in.stride, out.stride,
                    residual == null ? 0 : residual.stride, op.residualScale(), outer == null ? 0 : outer.stride, op.outerScale(),
                    op.act().kind(), op.act().slope(), op.bias() != null, aligned());
        }

        boolean aligned() {
            return CudaOps.aligned(in) && CudaOps.aligned(out) && (residual == null || CudaOps.aligned(residual)) && (outer == null || CudaOps.aligned(outer));
        }
    }

    /**
     * Shape, layout and epilogue: what decides which strategy is fastest (pointers may differ
     * between calls, and layers with the same key share one choice). A record, not a string,
     * because it is looked up on every convolution call. Strides are 0 for an absent residual.
     */
    private record Key(int kh, int kw, int cin, int cout, Padding padding, int n, int h, int w, int inStride, int outStride,
                       int residualStride, float residualScale, int outerStride, float outerScale, Act.Kind act, float leak,
                       boolean bias, boolean aligned) {}

    private void run(Strategy strategy, ConvGraph graph, int plan, Call c) {
        switch (strategy) {
            case FUSED -> fused(graph, plan, c);
            case GRAPH -> graphThenEpilogue(graph, plan, c);
            case LEGACY -> legacy(c);
        }
    }

    /**
     * Whether cuDNN's graphs may take this view: its tensors are declared 16-byte aligned, and its
     * kernels move 16 bytes at a time, so a channel slice must also have a pixel stride and a width
     * that are multiples of 16 bytes (a dense tensor of any width is fine). Otherwise the legacy
     * API runs it on a packed copy. Seen on the H100: a fused graph writing 4 fp16 channels after
     * the 64 it read, in one 68-channel buffer (esrgan-slim's dense blocks), wrote wrong values,
     * 29 LSB off UpscalerJS's output; the guarded run is within 1 LSB.
     */
    private static boolean aligned(Tensor t) {
        int b = t.precision.bytes;
        return (at(t) & 15) == 0 && (t.dense() || (t.stride * b) % 16 == 0 && (t.c * b) % 16 == 0);
    }

    /**
     * Times the strategies this call can use (each plan of each graph, up to 3 runs after a
     * warm-up, host clock around a synchronised batch; a candidate whose first timed run is 1.5x
     * the best so far is dropped at once) and keeps the fastest. fp32 stays on the legacy API, whose
     * FMA math type keeps it in true fp32 (graph engines may round inputs to TF32). In 16 bits the
     * legacy API is only the fallback when no graph runs: its algorithm search runs every algorithm
     * at full size. With every candidate timed in full, the first 1376x1376 tile of a 4096x4096
     * RRDBNet job took about 45 s of the job's 88 s on the H100; and the fused graph won every
     * RRDBNet shape measured there (35 of 35 at 256 and 512 tiles).
     */
    private Choice choose(Call c) {
        boolean graphs = precision != Precision.F32 && graphApi && c.aligned();
        Choice best = new Choice(Strategy.LEGACY, null, Double.MAX_VALUE);
        if (graphs) {
            for (Strategy st : new Strategy[] {Strategy.FUSED, Strategy.GRAPH}) {
                if (forced != null && st != forced) continue;
                ConvGraph.Spec spec = spec(c, st == Strategy.FUSED);
                if (st == Strategy.FUSED && !spec.fusable()) continue;
                ConvGraph cg;
                try {
                    cg = ConvGraph.build(CudnnGraph.get(), handle, spec, workspace.bytes(), MAX_PLANS);
                } catch (CudaException e) {
                    graphFailures.add(st + " " + c.key() + ": " + e.getMessage());
                    continue;
                }
                if (cg == null) continue;
                int bestPlan = -1;
                double bestTime = Double.MAX_VALUE;
                for (int i = 0; i < cg.plans.size(); i++) {
                    int plan = i;
                    double t;
                    try {
                        t = time(() -> run(st, cg, plan, c), Math.min(bestTime, best.micros()));
                    } catch (CudaException e) {
                        graphFailures.add(st + " plan " + i + " " + c.key() + ": " + e.getMessage());
                        continue;
                    }
                    if (t < bestTime) {
                        bestTime = t;
                        bestPlan = i;
                    }
                }
                if (bestPlan >= 0 && bestTime < best.micros()) {
                    cg.keep(bestPlan);
                    if (best.graph() != null) best.graph().close();
                    best = new Choice(st, cg, bestTime);
                } else {
                    cg.close();
                }
            }
        }
        if (forced == Strategy.LEGACY || forced == null && (!graphs || best.micros() == Double.MAX_VALUE)) {
            try {
                best = new Choice(Strategy.LEGACY, null, time(() -> legacy(c), Double.MAX_VALUE));
            } catch (CudaException e) {
                // fp32 has no other way; in 16 bits a graph may have run where the legacy API has no kernel
                if (precision == Precision.F32 || forced == Strategy.LEGACY) throw e;
                graphFailures.add("LEGACY " + c.key() + ": " + e.getMessage());
            }
        }
        if (best.micros() == Double.MAX_VALUE) {
            throw new IllegalStateException("no convolution strategy runs " + c.key() + " in " + precision + ": " + graphFailures);
        }
        if (forced != null && best.strategy() != forced) {
            throw new IllegalStateException("convolution strategy " + forced + " is not available for " + c.key() + "; " + graphFailures);
        }
        return best;
    }

    /**
     * The strategy an earlier process chose for {@code key} ({@link ConvChoiceStore}), with only its
     * plan finalised; null when none is remembered, a strategy is forced, or the remembered plan no
     * longer builds (the candidates are then timed again).
     */
    private Choice recall(Call c, Key key) {
        ConvChoiceStore.Entry e = forced == null ? remembered.get(key.toString()) : null;
        if (e == null) return null;
        Strategy st = switch (e.way()) {
            case "FUSED" -> Strategy.FUSED;
            case "GRAPH" -> Strategy.GRAPH;
            case "LEGACY" -> Strategy.LEGACY;
            default -> null;
        };
        if (st == null) return null;
        ConvGraph cg = null;
        if (st != Strategy.LEGACY) {
            if (precision == Precision.F32 || !graphApi || !c.aligned()) return null;
            try {
                cg = ConvGraph.rebuild(CudnnGraph.get(), handle, spec(c, st == Strategy.FUSED), workspace.bytes(), new ConvGraph.Origin(e.a(), e.b()));
            } catch (CudaException x) {
                graphFailures.add("remembered " + st + " " + key + ": " + x.getMessage());
            }
            if (cg == null) return null;
        }
        recalled++;
        return new Choice(st, cg, e.micros());
    }

    private void remember(Key key, Choice choice) {
        ConvGraph.Origin o = choice.graph() == null ? new ConvGraph.Origin(0, 0) : choice.graph().origins.getFirst();
        remembered.put(key.toString(), new ConvChoiceStore.Entry(choice.strategy().name(), o.mode(), o.position(), choice.micros()));
    }

    /**
     * Median microseconds of three synchronised runs after one warm-up; only the first when it
     * already takes 1.5x {@code best} (such a candidate cannot win, and at large tiles a slow plan
     * costs tens of milliseconds a run).
     */
    private double time(Runnable r, double best) {
        r.run();
        cu.synchronize();
        double[] t = new double[3];
        for (int i = 0; i < t.length; i++) {
            long t0 = System.nanoTime();
            r.run();
            cu.synchronize();
            t[i] = (System.nanoTime() - t0) / 1e3;
            if (i == 0 && t[0] > 1.5 * best) return t[0];
        }
        java.util.Arrays.sort(t);
        return t[1];
    }

    private ConvGraph.Spec spec(Call c, boolean fused) {
        Op.Conv2d op = c.p().op;
        int padH = op.padding() == Padding.SAME ? (op.kh() - 1) / 2 : 0, padW = op.padding() == Padding.SAME ? (op.kw() - 1) / 2 : 0;
        return new ConvGraph.Spec(dataType(), c.in().n, c.in().h, c.in().w, op.cin(), c.in().stride, op.cout(), c.out().stride,
                op.kh(), op.kw(), padH, padW, op.bias() != null, op.act().kind(), op.act().slope(),
                c.residual() != null, c.residual() == null ? 0 : c.residual().stride, op.residualScale(),
                c.outer() != null, c.outer() == null ? 0 : c.outer().stride, op.outerScale(), fused);
    }

    /** Element address of a view's first channel. */
    private static long at(Tensor t) {
        return t == null ? 0L : t.device.address() + (long) t.offset * t.precision.bytes;
    }

    private void fused(ConvGraph cg, int plan, Call c) {
        Op.Conv2d op = c.p().op;
        long s = c.residual() != null && op.residualScale() != 1f ? scalar(op.residualScale()) : 0L;
        long s2 = c.outer() != null && op.outerScale() != 1f ? scalar(op.outerScale()) : 0L;
        Prepared p = c.p();
        cg.execute(handle, plan, new ConvGraph.Pointers(at(c.in()), p.kernel.address(), p.bias == null ? 0L : p.bias.address(), s,
                at(c.residual()), s2, at(c.outer()), at(c.out()), cg.workspaces.get(plan) > 0 ? workspace.address() : 0L));
    }

    private void graphThenEpilogue(ConvGraph cg, int plan, Call c) {
        Tensor out = c.out();
        boolean direct = out.dense();
        Tensor y = direct ? out : allocate(out.n, out.h, out.w, out.c);
        try {
            cg.execute(handle, plan, new ConvGraph.Pointers(at(c.in()), c.p().kernel.address(), 0L, 0L, 0L, 0L, 0L, at(y),
                    cg.workspaces.get(plan) > 0 ? workspace.address() : 0L));
            epilogueAfter(c, y, direct);
        } finally {
            if (!direct) release(y);
        }
    }

    private void legacy(Call c) {
        Prepared p = c.p();
        Tensor in = c.in(), out = c.out();
        boolean direct = out.dense();
        Tensor y = direct ? out : allocate(out.n, out.h, out.w, out.c);
        Tensor packed = null;
        try {
            Tensor x = in;
            if (!in.dense()) {
                packed = allocate(in.n, in.h, in.w, in.c);
                copy(in, packed);
                x = packed;
            }
            ConvPlan plan = plan(p.op, x, p.kernel, y);
            dnn.forward(handle, alphaBeta, plan.x, x.device.address(), plan.w, p.kernel.address(), plan.conv, plan.algo,
                    plan.workspace > 0 ? workspace.address() : 0L, plan.workspace, plan.y, y.device.address());
            epilogueAfter(c, y, direct);
        } finally {
            if (packed != null) release(packed);
            if (!direct) release(y);
        }
    }

    /**
     * The epilogue pass after an unfused convolution into {@code y} (none when that is already the
     * result), and the outer residual as a second pass in place.
     */
    private void epilogueAfter(Call c, Tensor y, boolean direct) {
        Prepared p = c.p();
        Act act = p.op.act();
        if (p.bias != null || act.kind() != Act.Kind.NONE || !direct || c.residual() != null) {
            epilogue(y, p.bias == null ? 0L : p.bias.address(), act, p.slope == null ? 0L : p.slope.address(), c.residual(), p.op.residualScale(), c.out());
        }
        if (c.outer() != null) epilogue(c.out(), 0L, Act.NONE, 0L, c.outer(), p.op.outerScale(), c.out());
    }

    /** A device copy of one fp32 value (the residual scale of a fused graph), uploaded once. */
    private long scalar(float v) {
        return scalars.computeIfAbsent(v, f -> upload(new float[] {f})).address();
    }

    /**
     * Grows the one workspace to at least {@code bytes} (the planner counts it at the largest cap
     * any convolution has, so it is allocated at exactly that, not at what an algorithm happens to use).
     */
    private void ensureWorkspace(long bytes) {
        if (workspace != null && workspace.bytes() >= bytes) return;
        notWhileCapturing("grow the convolution workspace to " + bytes + " bytes");
        epoch++;
        if (workspace != null) alloc.free(workspace);
        workspace = null;
        try (var scope = alloc.tag("workspace", "convolution")) {
            workspace = alloc.allocate(bytes);
        }
    }

    /** cuDNN's name for the storage type. */
    private int dataType() {
        return switch (precision) {
            case F32 -> Cudnn.DATA_FLOAT;
            case F16 -> Cudnn.DATA_HALF;
            case BF16 -> Cudnn.DATA_BFLOAT16;
        };
    }

    private ConvPlan plan(Op.Conv2d op, Tensor x, DeviceBuffer w, Tensor y) {
        String key = op.kh() + "x" + op.kw() + ":" + op.cin() + ">" + op.cout() + ":" + op.padding() + ":" + x.n + "," + x.h + "," + x.w;
        ConvPlan plan = plans.get(key);
        if (plan != null) return plan;
        int padH = op.padding() == Padding.SAME ? (op.kh() - 1) / 2 : 0, padW = op.padding() == Padding.SAME ? (op.kw() - 1) / 2 : 0;
        int type = dataType();
        MemorySegment xd = dnn.tensorNhwc(type, x.n, x.c, x.h, x.w, x.c);
        MemorySegment wd = dnn.filterNhwc(type, op.cout(), op.cin(), op.kh(), op.kw());
        MemorySegment cd = dnn.convolution(padH, padW, Cudnn.DATA_FLOAT, precision == Precision.F32 ? Cudnn.FMA_MATH : Cudnn.TENSOR_OP_MATH);
        MemorySegment yd = dnn.tensorNhwc(type, y.n, y.c, y.h, y.w, y.c);
        long cap = CudaMemoryModel.workspaceCap(x.bytes());
        ConvChoiceStore.Entry known = remembered.get("algo " + key);
        if (known != null) {
            try {
                long ws = dnn.workspaceSize(handle, xd, wd, cd, yd, known.a());
                if (ws <= cap) {
                    plan = new ConvPlan(xd, wd, cd, yd, known.a(), ws);
                    plans.put(key, plan);
                    return plan;
                }
            } catch (CudaException e) {
                // that algorithm no longer takes this shape: search again
            }
        }
        // time every algorithm once on the real buffers, in the workspace this convolution may use
        Cudnn.AlgoPerf[] found = dnn.findAlgorithms(handle, xd, x.device.address(), wd, w.address(), cd, yd, y.device.address(), workspace.address(), cap);
        Cudnn.AlgoPerf chosen = null;
        for (Cudnn.AlgoPerf a : found) {
            if (a.status() == 0 && a.workspace() <= cap) {
                chosen = a;
                break;
            }
        }
        if (chosen == null) throw new IllegalStateException("cuDNN has no algorithm for convolution " + key + " within " + cap + " bytes of workspace");
        long ws = dnn.workspaceSize(handle, xd, wd, cd, yd, chosen.algo());
        plan = new ConvPlan(xd, wd, cd, yd, chosen.algo(), ws);
        plans.put(key, plan);
        remembered.put("algo " + key, new ConvChoiceStore.Entry("ALGO", chosen.algo(), 0, chosen.ms() * 1e3));
        return plan;
    }

    private void epilogue(Tensor x, long bias, Act act, long slope, Tensor residual, float residualScale, Tensor y) {
        int a = switch (act.kind()) {
            case NONE -> 0;
            case RELU -> 1;
            case LEAKY_RELU -> 2;
            case PRELU -> 3;
        };
        long pixels = (long) y.n * y.h * y.w;
        launchPixels("epilogue", pixels, y.c, ptr(x), x.stride, x.offset, bias, slope, a, act.slope(),
                residual == null ? 0L : ptr(residual), residual == null ? 0 : residual.stride, residual == null ? 0 : residual.offset, residualScale,
                ptr(y), y.stride, y.offset, pixels, y.c);
    }

    @Override
    public void activation(Tensor in, Act act, float[] slope, Tensor out) {
        long s = slope == null ? 0L : constants.computeIfAbsent(slope, this::upload).address();
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
            for (ConvPlan p : plans.values()) {
                dnn.destroyTensor(p.x);
                dnn.destroyFilter(p.w);
                dnn.destroyConvolution(p.conv);
                dnn.destroyTensor(p.y);
            }
            plans.clear();
            for (Choice c : choices.values()) if (c.graph() != null) c.graph().close();
            choices.clear();
            for (DeviceBuffer b : scalars.values()) alloc.free(b);
            scalars.clear();
            for (DeviceBuffer b : constants.values()) alloc.free(b);
            constants.clear();
            if (workspace != null) alloc.free(workspace);
            workspace = null;
            slots.close();
            dnn.destroyHandle(handle);
            cu.streamDestroy(stream);
            cu.moduleUnload(module);
            alloc.close();
        } finally {
            arena.close();
            cu.releasePrimaryContext(device);
        }
    }
}
