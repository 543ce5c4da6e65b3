package dev.headroom.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.List;

/**
 * cuDNN 9's graph (backend) API: operation graphs of a convolution and pointwise operations,
 * engine heuristics, execution plans and variant packs (cudnn_graph.h). This is the API PyTorch
 * reaches through cudnn-frontend; it offers engines the legacy API does not (runtime-compiled
 * fusions of a convolution with its epilogue, strided inputs and outputs), which is why it is here.
 *
 * <p>Descriptors are opaque addresses; whoever creates one destroys it ({@link #destroy}). Every
 * status is checked; a failure names the function, the attribute and cuDNN's last error text.
 */
public final class CudnnGraph {
    // cudnnBackendDescriptorType_t
    public static final int POINTWISE = 0, CONVOLUTION = 1, ENGINE = 2, ENGINECFG = 3, ENGINEHEUR = 4, EXECUTION_PLAN = 5,
            OPERATION_CONVOLUTION_FORWARD = 10, OPERATION_POINTWISE = 13, OPERATIONGRAPH = 15, VARIANT_PACK = 16, TENSOR = 17;
    // cudnnBackendAttributeType_t
    static final int T_HANDLE = 0, T_DATA_TYPE = 1, T_BOOLEAN = 2, T_INT64 = 3, T_FLOAT = 4, T_DOUBLE = 5, T_VOID_PTR = 6,
            T_CONVOLUTION_MODE = 7, T_HEUR_MODE = 8, T_NUMERICAL_NOTE = 11, T_POINTWISE_MODE = 14, T_BACKEND_DESCRIPTOR = 15,
            T_BEHAVIOR_NOTE = 19, T_CHAR = 24;
    // cudnnBackendAttributeName_t
    static final int POINTWISE_MODE = 0, POINTWISE_MATH_PREC = 1, POINTWISE_RELU_LOWER_CLIP_SLOPE = 5,
            CONVOLUTION_COMP_TYPE = 100, CONVOLUTION_CONV_MODE = 101, CONVOLUTION_DILATIONS = 102, CONVOLUTION_FILTER_STRIDES = 103,
            CONVOLUTION_POST_PADDINGS = 104, CONVOLUTION_PRE_PADDINGS = 105, CONVOLUTION_SPATIAL_DIMS = 106,
            ENGINECFG_ENGINE = 300, ENGINE_NUMERICAL_NOTE = 1303, ENGINE_BEHAVIOR_NOTE = 1305,
            ENGINEHEUR_MODE = 200, ENGINEHEUR_OPERATION_GRAPH = 201, ENGINEHEUR_RESULTS = 202,
            EXECUTION_PLAN_HANDLE = 400, EXECUTION_PLAN_ENGINE_CONFIG = 401, EXECUTION_PLAN_WORKSPACE_SIZE = 402,
            EXECUTION_PLAN_JSON_REPRESENTATION = 405,
            CONV_FWD_ALPHA = 700, CONV_FWD_BETA = 701, CONV_FWD_CONV_DESC = 702, CONV_FWD_W = 703, CONV_FWD_X = 704, CONV_FWD_Y = 705,
            PW_DESCRIPTOR = 750, PW_XDESC = 751, PW_BDESC = 752, PW_YDESC = 753,
            OPERATIONGRAPH_HANDLE = 800, OPERATIONGRAPH_OPS = 801,
            TENSOR_BYTE_ALIGNMENT = 900, TENSOR_DATA_TYPE = 901, TENSOR_DIMENSIONS = 902, TENSOR_STRIDES = 903, TENSOR_UNIQUE_ID = 906,
            TENSOR_IS_VIRTUAL = 907,
            VARIANT_PACK_UNIQUE_IDS = 1000, VARIANT_PACK_DATA_POINTERS = 1001, VARIANT_PACK_WORKSPACE = 1003;
    // cudnnPointwiseMode_t
    public static final int PW_ADD = 0, PW_MUL = 1, PW_RELU_FWD = 100;
    // cudnnBackendNumericalNote_t: tensor cores, whose fp32 inputs are rounded to TF32 (DOWN_CONVERT_INPUTS)
    public static final int NOTE_TENSOR_CORE = 0, NOTE_DOWN_CONVERT_INPUTS = 1, NOTE_REDUCED_PRECISION_REDUCTION = 2;
    // cudnnBackendBehaviorNote_t: the engine's kernel is compiled at run time (NVRTC) when its plan is finalised
    public static final int BEHAVIOR_RUNTIME_COMPILATION = 0;
    // cudnnBackendHeurMode_t
    public static final int HEUR_INSTANT = 0, HEUR_FALLBACK = 2, HEUR_A = 3;

    private static final Once<CudnnGraph> INSTANCE = new Once<>(CudnnGraph::new);
    private final MethodHandle create, destroy, finalize, setAttr, getAttr, execute, lastError;
    private final Cudnn dnn = Cudnn.get();

    private CudnnGraph() {
        NativeLibraries.Library lib = NativeLibraries.load("cuDNN 9 (libcudnn)", "HEADROOM_CUDNN", "libcudnn.so.9", "libcudnn.so");
        create = lib.function("cudnnBackendCreateDescriptor", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
        destroy = lib.function("cudnnBackendDestroyDescriptor", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        finalize = lib.function("cudnnBackendFinalize", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        setAttr = lib.function("cudnnBackendSetAttribute", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS));
        getAttr = lib.function("cudnnBackendGetAttribute", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS, ADDRESS));
        execute = lib.function("cudnnBackendExecute", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
        lastError = lib.function("cudnnGetLastErrorString", FunctionDescriptor.ofVoid(ADDRESS, JAVA_LONG));
    }

    public static CudnnGraph get() {
        return INSTANCE.get();
    }

    public MemorySegment create(int type) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment d = a.allocate(ADDRESS);
            check(Driver.call(() -> (int) create.invokeExact(type, d)), "cudnnBackendCreateDescriptor", type);
            return d.get(ADDRESS, 0);
        }
    }

    public void destroy(MemorySegment d) {
        check(Driver.call(() -> (int) destroy.invokeExact(d)), "cudnnBackendDestroyDescriptor", 0);
    }

    void finalize(MemorySegment d, int what) {
        check(Driver.call(() -> (int) finalize.invokeExact(d)), "cudnnBackendFinalize", what);
    }

    private void set(MemorySegment d, int name, int type, long count, MemorySegment values) {
        check(Driver.call(() -> (int) setAttr.invokeExact(d, name, type, count, values)), "cudnnBackendSetAttribute", name);
    }

    private void setLongs(MemorySegment d, int name, long... v) {
        try (Arena a = Arena.ofConfined()) {
            set(d, name, T_INT64, v.length, a.allocateFrom(JAVA_LONG, v));
        }
    }

    private void setInt(MemorySegment d, int name, int type, int v) {
        try (Arena a = Arena.ofConfined()) {
            set(d, name, type, 1, a.allocateFrom(JAVA_INT, v));
        }
    }

    private void setDescriptors(MemorySegment d, int name, MemorySegment... v) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment arr = a.allocate(ADDRESS, v.length);
            for (int i = 0; i < v.length; i++) arr.setAtIndex(ADDRESS, i, v[i]);
            set(d, name, T_BACKEND_DESCRIPTOR, v.length, arr);
        }
    }

    /**
     * A 4-d tensor in cuDNN's logical (N, C, H, W) order with the given element strides, e.g. an
     * NHWC view of {@code c} channels in a buffer of {@code pixelStride} channels:
     * strides (H*W*pixelStride, 1, W*pixelStride, pixelStride). Virtual tensors live only inside a fused kernel.
     */
    public MemorySegment tensor(long uid, int dataType, long[] dims, long[] strides, boolean virtual) {
        MemorySegment t = create(TENSOR);
        try (Arena a = Arena.ofConfined()) {
            setInt(t, TENSOR_DATA_TYPE, T_DATA_TYPE, dataType);
            setLongs(t, TENSOR_DIMENSIONS, dims);
            setLongs(t, TENSOR_STRIDES, strides);
            setLongs(t, TENSOR_UNIQUE_ID, uid);
            setLongs(t, TENSOR_BYTE_ALIGNMENT, 16);
            set(t, TENSOR_IS_VIRTUAL, T_BOOLEAN, 1, a.allocateFrom(JAVA_BYTE, (byte) (virtual ? 1 : 0)));
            finalize(t, TENSOR);
        } catch (RuntimeException e) {
            destroy(t);
            throw e;
        }
        return t;
    }

    /** A 2-d cross-correlation with unit strides and dilations, fp32 accumulation. */
    public MemorySegment convolution(long padH, long padW) {
        MemorySegment c = create(CONVOLUTION);
        setInt(c, CONVOLUTION_COMP_TYPE, T_DATA_TYPE, Cudnn.DATA_FLOAT);
        setInt(c, CONVOLUTION_CONV_MODE, T_CONVOLUTION_MODE, Cudnn.CROSS_CORRELATION);
        setLongs(c, CONVOLUTION_SPATIAL_DIMS, 2);
        setLongs(c, CONVOLUTION_DILATIONS, 1, 1);
        setLongs(c, CONVOLUTION_FILTER_STRIDES, 1, 1);
        setLongs(c, CONVOLUTION_PRE_PADDINGS, padH, padW);
        setLongs(c, CONVOLUTION_POST_PADDINGS, padH, padW);
        finalize(c, CONVOLUTION);
        return c;
    }

    /** y = conv(x, w), alpha 1, beta 0. */
    public MemorySegment convForward(MemorySegment conv, MemorySegment x, MemorySegment w, MemorySegment y) {
        MemorySegment op = create(OPERATION_CONVOLUTION_FORWARD);
        try (Arena a = Arena.ofConfined()) {
            setDescriptors(op, CONV_FWD_CONV_DESC, conv);
            setDescriptors(op, CONV_FWD_X, x);
            setDescriptors(op, CONV_FWD_W, w);
            setDescriptors(op, CONV_FWD_Y, y);
            set(op, CONV_FWD_ALPHA, T_FLOAT, 1, a.allocateFrom(JAVA_FLOAT, 1f));
            set(op, CONV_FWD_BETA, T_FLOAT, 1, a.allocateFrom(JAVA_FLOAT, 0f));
            finalize(op, OPERATION_CONVOLUTION_FORWARD);
        }
        return op;
    }

    /** A pointwise operator in fp32 arithmetic; {@code reluSlope} is the negative slope of RELU_FWD (0 for plain ReLU). */
    public MemorySegment pointwise(int mode, double reluSlope) {
        MemorySegment p = create(POINTWISE);
        setInt(p, POINTWISE_MODE, T_POINTWISE_MODE, mode);
        setInt(p, POINTWISE_MATH_PREC, T_DATA_TYPE, Cudnn.DATA_FLOAT);
        if (mode == PW_RELU_FWD && reluSlope != 0) {
            try (Arena a = Arena.ofConfined()) {
                set(p, POINTWISE_RELU_LOWER_CLIP_SLOPE, T_DOUBLE, 1, a.allocateFrom(JAVA_DOUBLE, reluSlope));
            }
        }
        finalize(p, POINTWISE);
        return p;
    }

    /** y = pw(x) or y = pw(x, b) ({@code b} null for unary operators). */
    public MemorySegment pointwiseOp(MemorySegment pw, MemorySegment x, MemorySegment b, MemorySegment y) {
        MemorySegment op = create(OPERATION_POINTWISE);
        setDescriptors(op, PW_DESCRIPTOR, pw);
        setDescriptors(op, PW_XDESC, x);
        if (b != null) setDescriptors(op, PW_BDESC, b);
        setDescriptors(op, PW_YDESC, y);
        finalize(op, OPERATION_POINTWISE);
        return op;
    }

    public MemorySegment operationGraph(MemorySegment handle, List<MemorySegment> ops) {
        MemorySegment g = create(OPERATIONGRAPH);
        try (Arena a = Arena.ofConfined()) {
            set(g, OPERATIONGRAPH_HANDLE, T_HANDLE, 1, a.allocateFrom(ADDRESS, handle));
            setDescriptors(g, OPERATIONGRAPH_OPS, ops.toArray(MemorySegment[]::new));
            finalize(g, OPERATIONGRAPH);
        } catch (RuntimeException e) {
            destroy(g);
            throw e;
        }
        return g;
    }

    /**
     * The engine configurations cuDNN's heuristics {@code mode} proposes for a graph, best first;
     * the caller destroys them. None when the heuristics have nothing for the graph.
     */
    public List<MemorySegment> engineConfigs(MemorySegment graph, int mode, int max) {
        MemorySegment heur = create(ENGINEHEUR);
        try (Arena a = Arena.ofConfined()) {
            setDescriptors(heur, ENGINEHEUR_OPERATION_GRAPH, graph);
            setInt(heur, ENGINEHEUR_MODE, T_HEUR_MODE, mode);
            int st = Driver.call(() -> (int) finalize.invokeExact(heur));
            if (st != 0) return List.of();
            MemorySegment count = a.allocate(JAVA_LONG);
            check(Driver.call(() -> (int) getAttr.invokeExact(heur, ENGINEHEUR_RESULTS, T_BACKEND_DESCRIPTOR, 0L, count, MemorySegment.NULL)),
                    "cudnnBackendGetAttribute", ENGINEHEUR_RESULTS);
            int n = (int) Math.min(count.get(JAVA_LONG, 0), max);
            if (n == 0) return List.of();
            List<MemorySegment> cfgs = new ArrayList<>();
            MemorySegment arr = a.allocate(ADDRESS, n);
            for (int i = 0; i < n; i++) {
                MemorySegment c = create(ENGINECFG);
                cfgs.add(c);
                arr.setAtIndex(ADDRESS, i, c);
            }
            long requested = n;
            check(Driver.call(() -> (int) getAttr.invokeExact(heur, ENGINEHEUR_RESULTS, T_BACKEND_DESCRIPTOR, requested, count, arr)),
                    "cudnnBackendGetAttribute", ENGINEHEUR_RESULTS);
            int got = (int) count.get(JAVA_LONG, 0);
            while (cfgs.size() > got) destroy(cfgs.removeLast());
            return cfgs;
        } finally {
            destroy(heur);
        }
    }

    /**
     * The numerical notes of an engine configuration's engine (NOTE_TENSOR_CORE, ...): what it
     * does to the numbers, e.g. fp32 inputs rounded to TF32 on tensor cores.
     */
    public int[] numericalNotes(MemorySegment engineConfig) {
        return engineNotes(engineConfig, ENGINE_NUMERICAL_NOTE, T_NUMERICAL_NOTE);
    }

    /**
     * The behaviour notes of an engine configuration's engine (BEHAVIOR_RUNTIME_COMPILATION, ...):
     * e.g. whether finalising a plan for it compiles a kernel, which on a machine with an empty
     * driver JIT cache takes a good part of a second.
     */
    public int[] behaviorNotes(MemorySegment engineConfig) {
        return engineNotes(engineConfig, ENGINE_BEHAVIOR_NOTE, T_BEHAVIOR_NOTE);
    }

    /** An enum-array attribute ({@code attribute} of {@code type}, at most 32) of an engine configuration's engine. */
    private int[] engineNotes(MemorySegment engineConfig, int attribute, int type) {
        MemorySegment engine = create(ENGINE);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment count = a.allocate(JAVA_LONG), holder = a.allocateFrom(ADDRESS, engine);
            check(Driver.call(() -> (int) getAttr.invokeExact(engineConfig, ENGINECFG_ENGINE, T_BACKEND_DESCRIPTOR, 1L, count, holder)),
                    "cudnnBackendGetAttribute", ENGINECFG_ENGINE);
            MemorySegment notes = a.allocate(JAVA_INT, 32);
            check(Driver.call(() -> (int) getAttr.invokeExact(engine, attribute, type, 32L, count, notes)), "cudnnBackendGetAttribute", attribute);
            return notes.asSlice(0, Math.min(32, count.get(JAVA_LONG, 0)) * JAVA_INT.byteSize()).toArray(JAVA_INT);
        } finally {
            destroy(engine);
        }
    }

    /** An execution plan for one engine configuration, or null where that engine does not support the graph. */
    public MemorySegment plan(MemorySegment handle, MemorySegment engineConfig) {
        MemorySegment p = create(EXECUTION_PLAN);
        try (Arena a = Arena.ofConfined()) {
            set(p, EXECUTION_PLAN_HANDLE, T_HANDLE, 1, a.allocateFrom(ADDRESS, handle));
            setDescriptors(p, EXECUTION_PLAN_ENGINE_CONFIG, engineConfig);
            int st = Driver.call(() -> (int) finalize.invokeExact(p));
            if (st == 0) return p;
        }
        destroy(p);
        return null;
    }

    /**
     * The plan in cuDNN's serialised form (its JSON representation; a runtime-compiled engine's kernel
     * travels in it), or null where cuDNN does not serialise this plan's engine.
     */
    public byte[] planJson(MemorySegment plan) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment n = a.allocate(JAVA_LONG);
            if (Driver.call(() -> (int) getAttr.invokeExact(plan, EXECUTION_PLAN_JSON_REPRESENTATION, T_CHAR, 0L, n, MemorySegment.NULL)) != 0) return null;
            long count = n.get(JAVA_LONG, 0);
            if (count <= 0 || count > Integer.MAX_VALUE - 1) return null;
            MemorySegment text = a.allocate(count + 1);
            if (Driver.call(() -> (int) getAttr.invokeExact(plan, EXECUTION_PLAN_JSON_REPRESENTATION, T_CHAR, count, n, text)) != 0) return null;
            long len = Math.min(count, n.get(JAVA_LONG, 0));
            while (len > 0 && text.get(JAVA_BYTE, len - 1) == 0) len--;   // the C string's terminator
            return len == 0 ? null : text.asSlice(0, len).toArray(JAVA_BYTE);
        }
    }

    /**
     * A plan made on {@code handle} from {@link #planJson}'s bytes (a device of the same kind, the same
     * driver and cuDNN), without compiling its kernel again; null where cuDNN refuses them.
     */
    public MemorySegment planFromJson(MemorySegment handle, byte[] json) {
        MemorySegment p = create(EXECUTION_PLAN);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment text = a.allocateFrom(JAVA_BYTE, json);
            MemorySegment h = a.allocateFrom(ADDRESS, handle);
            if (Driver.call(() -> (int) setAttr.invokeExact(p, EXECUTION_PLAN_JSON_REPRESENTATION, T_CHAR, (long) json.length, text)) == 0
                    && Driver.call(() -> (int) setAttr.invokeExact(p, EXECUTION_PLAN_HANDLE, T_HANDLE, 1L, h)) == 0
                    && Driver.call(() -> (int) finalize.invokeExact(p)) == 0) {
                return p;
            }
        }
        destroy(p);
        return null;
    }

    public long workspaceSize(MemorySegment plan) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment n = a.allocate(JAVA_LONG), v = a.allocate(JAVA_LONG);
            check(Driver.call(() -> (int) getAttr.invokeExact(plan, EXECUTION_PLAN_WORKSPACE_SIZE, T_INT64, 1L, n, v)),
                    "cudnnBackendGetAttribute", EXECUTION_PLAN_WORKSPACE_SIZE);
            return v.get(JAVA_LONG, 0);
        }
    }

    /** The device pointers of one execution: tensor uid i is at {@code pointers[i]}, and the workspace. */
    public MemorySegment variantPack(long[] uids, long[] pointers, long workspace) {
        MemorySegment v = create(VARIANT_PACK);
        try (Arena a = Arena.ofConfined()) {
            setLongs(v, VARIANT_PACK_UNIQUE_IDS, uids);
            set(v, VARIANT_PACK_DATA_POINTERS, T_VOID_PTR, pointers.length, a.allocateFrom(JAVA_LONG, pointers));
            set(v, VARIANT_PACK_WORKSPACE, T_VOID_PTR, 1, a.allocateFrom(JAVA_LONG, workspace));
            finalize(v, VARIANT_PACK);
        } catch (RuntimeException e) {
            destroy(v);
            throw e;
        }
        return v;
    }

    public void execute(MemorySegment handle, MemorySegment plan, MemorySegment variantPack) {
        check(Driver.call(() -> (int) execute.invokeExact(handle, plan, variantPack)), "cudnnBackendExecute", 0);
    }

    private void check(int status, String fn, int what) {
        if (status == 0) return;
        String detail;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment msg = a.allocate(512);
            Driver.call(() -> {
                lastError.invokeExact(msg, 512L);
                return 0;
            });
            detail = (what != 0 ? "attribute/type " + what + "; " : "") + msg.getString(0);
        }
        dnn.check(status, fn + (detail.isBlank() ? "" : " [" + detail + "]"));
    }
}
