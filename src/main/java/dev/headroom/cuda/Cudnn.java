package dev.headroom.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * cuDNN 9's legacy convolution API: descriptors, timed algorithm search, workspace size and the
 * forward convolution. Enough for NHWC convolutions; fused epilogues are headroom's own kernels.
 */
public final class Cudnn {
    public static final int DATA_FLOAT = 0, DATA_HALF = 2, DATA_BFLOAT16 = 9;
    public static final int FORMAT_NHWC = 1;
    public static final int CROSS_CORRELATION = 1;
    public static final int DEFAULT_MATH = 0, TENSOR_OP_MATH = 1, FMA_MATH = 3;

    private static final Once<Cudnn> INSTANCE = new Once<>(Cudnn::new);
    private final NativeLibraries.Library lib;
    private final MethodHandle getVersion, create, destroy, setStream, createTensor, setTensor, destroyTensor, createFilter, setFilter,
            destroyFilter, createConv, setConv, setMath, destroyConv, findAlgo, wsSize, forward, errorString;

    /** One candidate algorithm from the heuristics. */
    /** One algorithm's result: its id, status, measured milliseconds, workspace bytes and math type. */
    public record AlgoPerf(int algo, int status, float ms, long workspace, int mathType) {}

    private Cudnn() {
        lib = NativeLibraries.load("cuDNN 9 (libcudnn)", "HEADROOM_CUDNN", "libcudnn.so.9", "libcudnn.so");
        FunctionDescriptor i_p = FunctionDescriptor.of(JAVA_INT, ADDRESS);
        getVersion = lib.function("cudnnGetVersion", FunctionDescriptor.of(JAVA_LONG));
        create = lib.function("cudnnCreate", i_p);
        destroy = lib.function("cudnnDestroy", i_p);
        setStream = lib.function("cudnnSetStream", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        createTensor = lib.function("cudnnCreateTensorDescriptor", i_p);
        setTensor = lib.function("cudnnSetTensor4dDescriptorEx", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT,
                JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
        destroyTensor = lib.function("cudnnDestroyTensorDescriptor", i_p);
        createFilter = lib.function("cudnnCreateFilterDescriptor", i_p);
        setFilter = lib.function("cudnnSetFilter4dDescriptor", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT,
                JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
        destroyFilter = lib.function("cudnnDestroyFilterDescriptor", i_p);
        createConv = lib.function("cudnnCreateConvolutionDescriptor", i_p);
        setConv = lib.function("cudnnSetConvolution2dDescriptor", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT,
                JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
        setMath = lib.function("cudnnSetConvolutionMathType", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        destroyConv = lib.function("cudnnDestroyConvolutionDescriptor", i_p);
        findAlgo = lib.function("cudnnFindConvolutionForwardAlgorithmEx", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG,
                ADDRESS, JAVA_LONG, ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG));
        wsSize = lib.function("cudnnGetConvolutionForwardWorkspaceSize", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS,
                ADDRESS, ADDRESS, JAVA_INT, ADDRESS));
        forward = lib.function("cudnnConvolutionForward", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG,
                ADDRESS, JAVA_LONG, ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG, ADDRESS, ADDRESS, JAVA_LONG));
        errorString = lib.function("cudnnGetErrorString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
    }

    public static Cudnn get() {
        return INSTANCE.get();
    }

    public String libraryPath() {
        return lib.path();
    }

    public long version() {
        try {
            return (long) getVersion.invokeExact();
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    public MemorySegment createHandle(MemorySegment stream) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment h = a.allocate(ADDRESS);
            check(Driver.call(() -> (int) create.invokeExact(h)), "cudnnCreate");
            MemorySegment handle = h.get(ADDRESS, 0);
            check(Driver.call(() -> (int) setStream.invokeExact(handle, stream)), "cudnnSetStream");
            return handle;
        }
    }

    public void destroyHandle(MemorySegment h) {
        check(Driver.call(() -> (int) destroy.invokeExact(h)), "cudnnDestroy");
    }

    /** An NHWC tensor descriptor; {@code pixelStride} is the channel count of the buffer the view lives in. */
    public MemorySegment tensorNhwc(int dataType, int n, int c, int h, int w, int pixelStride) {
        MemorySegment d = newDesc(createTensor, "cudnnCreateTensorDescriptor");
        check(Driver.call(() -> (int) setTensor.invokeExact(d, dataType, n, c, h, w, h * w * pixelStride, 1, w * pixelStride, pixelStride)),
                "cudnnSetTensor4dDescriptorEx");
        return d;
    }

    /** A KRSC (cout, kh, kw, cin) filter descriptor. */
    public MemorySegment filterNhwc(int dataType, int cout, int cin, int kh, int kw) {
        MemorySegment d = newDesc(createFilter, "cudnnCreateFilterDescriptor");
        check(Driver.call(() -> (int) setFilter.invokeExact(d, dataType, FORMAT_NHWC, cout, cin, kh, kw)), "cudnnSetFilter4dDescriptor");
        return d;
    }

    public MemorySegment convolution(int padH, int padW, int computeType, int mathType) {
        MemorySegment d = newDesc(createConv, "cudnnCreateConvolutionDescriptor");
        check(Driver.call(() -> (int) setConv.invokeExact(d, padH, padW, 1, 1, 1, 1, CROSS_CORRELATION, computeType)), "cudnnSetConvolution2dDescriptor");
        check(Driver.call(() -> (int) setMath.invokeExact(d, mathType)), "cudnnSetConvolutionMathType");
        return d;
    }

    public void destroyTensor(MemorySegment d) {
        check(Driver.call(() -> (int) destroyTensor.invokeExact(d)), "cudnnDestroyTensorDescriptor");
    }

    public void destroyFilter(MemorySegment d) {
        check(Driver.call(() -> (int) destroyFilter.invokeExact(d)), "cudnnDestroyFilterDescriptor");
    }

    public void destroyConvolution(MemorySegment d) {
        check(Driver.call(() -> (int) destroyConv.invokeExact(d)), "cudnnDestroyConvolutionDescriptor");
    }

    private static final int MAX_ALGOS = 10, PERF_BYTES = 48;   // sizeof(cudnnConvolutionFwdAlgoPerf_t)

    /**
     * Every algorithm timed on the real buffers, fastest first (cudnnFindConvolutionForwardAlgorithmEx),
     * with a workspace the caller provides, so the search allocates nothing behind headroom's back.
     * It writes into {@code yPtr}.
     */
    public AlgoPerf[] findAlgorithms(MemorySegment h, MemorySegment x, long xPtr, MemorySegment w, long wPtr, MemorySegment conv,
                                     MemorySegment y, long yPtr, long ws, long wsBytes) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment n = a.allocate(JAVA_INT);
            MemorySegment perf = a.allocate((long) PERF_BYTES * MAX_ALGOS, 8);
            check(Driver.call(() -> (int) findAlgo.invokeExact(h, x, xPtr, w, wPtr, conv, y, yPtr, MAX_ALGOS, n, perf, ws, wsBytes)),
                    "cudnnFindConvolutionForwardAlgorithmEx");
            return perfs(n, perf);
        }
    }

    private static AlgoPerf[] perfs(MemorySegment n, MemorySegment perf) {
        AlgoPerf[] out = new AlgoPerf[n.get(JAVA_INT, 0)];
        for (int i = 0; i < out.length; i++) {
            long o = (long) i * PERF_BYTES;
            out[i] = new AlgoPerf(perf.get(JAVA_INT, o), perf.get(JAVA_INT, o + 4), perf.get(JAVA_FLOAT, o + 8), perf.get(JAVA_LONG, o + 16), perf.get(JAVA_INT, o + 28));
        }
        return out;
    }

    public long workspaceSize(MemorySegment h, MemorySegment x, MemorySegment w, MemorySegment conv, MemorySegment y, int algo) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(JAVA_LONG);
            check(Driver.call(() -> (int) wsSize.invokeExact(h, x, w, conv, y, algo, s)), "cudnnGetConvolutionForwardWorkspaceSize");
            return s.get(JAVA_LONG, 0);
        }
    }

    /** y = conv(x, w) (alpha 1, beta 0); {@code alphaBeta} holds two floats {1, 0} and outlives the call. */
    public void forward(MemorySegment h, MemorySegment alphaBeta, MemorySegment xDesc, long x, MemorySegment wDesc, long w,
                        MemorySegment conv, int algo, long ws, long wsBytes, MemorySegment yDesc, long y) {
        MemorySegment alpha = alphaBeta, beta = alphaBeta.asSlice(JAVA_FLOAT.byteSize());
        check(Driver.call(() -> (int) forward.invokeExact(h, alpha, xDesc, x, wDesc, w, conv, algo, ws, wsBytes, beta, yDesc, y)),
                "cudnnConvolutionForward");
    }

    private MemorySegment newDesc(MethodHandle creator, String fn) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment d = a.allocate(ADDRESS);
            check(Driver.call(() -> (int) creator.invokeExact(d)), fn);
            return d.get(ADDRESS, 0);
        }
    }

    public void check(int status, String fn) {
        if (status == 0) return;
        throw new CudaException("libcudnn", fn, status, NativeLibraries.statusName(errorString, status, "CUDNN_STATUS_"), null);
    }
}
