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
 * cuBLAS (libcublas, CUDA 12 or 13): a handle bound to a stream and to a workspace headroom
 * allocated, and {@code cublasGemmEx}, the mixed-precision matrix product. Matrices are
 * column-major, as cuBLAS has them; callers map row-major NHWC views onto that with leading
 * dimensions (see {@code CudaOps}' 1x1 convolution).
 */
public final class Cublas {
    public static final int OP_N = 0, OP_T = 1;
    /** cudaDataType_t. */
    public static final int R_32F = 0, R_16F = 2, R_16BF = 14;
    /** cublasComputeType_t: fp32 accumulation; PEDANTIC keeps fp32 inputs out of TF32 tensor cores. */
    public static final int COMPUTE_32F = 68, COMPUTE_32F_PEDANTIC = 69;
    /** cublasGemmAlgo_t: let cuBLAS's heuristics choose (tensor cores where the types allow). */
    public static final int GEMM_DEFAULT = -1;

    private static final Once<Cublas> INSTANCE = new Once<>(Cublas::new);
    private final NativeLibraries.Library lib;
    private final MethodHandle create, destroy, setStream, setWorkspace, gemmEx, getProperty, statusName;

    private Cublas() {
        lib = NativeLibraries.load("cuBLAS (libcublas)", "HEADROOM_CUBLAS", "libcublas.so.13", "libcublas.so.12", "libcublas.so");
        FunctionDescriptor i_p = FunctionDescriptor.of(JAVA_INT, ADDRESS);
        create = lib.function("cublasCreate_v2", i_p);
        destroy = lib.function("cublasDestroy_v2", i_p);
        setStream = lib.function("cublasSetStream_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        setWorkspace = lib.function("cublasSetWorkspace_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG));
        // cublasGemmEx(handle, transa, transb, m, n, k, alpha*, A, Atype, lda, B, Btype, ldb, beta*, C, Ctype, ldc, computeType, algo)
        gemmEx = lib.function("cublasGemmEx", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
        getProperty = lib.function("cublasGetProperty", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
        statusName = lib.function("cublasGetStatusName", FunctionDescriptor.of(ADDRESS, JAVA_INT));
    }

    public static Cublas get() {
        return INSTANCE.get();
    }

    public String libraryPath() {
        return lib.path();
    }

    /** "major.minor.patch" of the loaded library. */
    public String version() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_INT);
            StringBuilder s = new StringBuilder();
            for (int part = 0; part < 3; part++) {   // MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL
                int p = part;
                check(Driver.call(() -> (int) getProperty.invokeExact(p, v)), "cublasGetProperty");
                s.append(part == 0 ? "" : ".").append(v.get(JAVA_INT, 0));
            }
            return s.toString();
        }
    }

    /** A handle whose work goes on {@code stream}; destroy it with {@link #destroyHandle}. */
    public MemorySegment createHandle(MemorySegment stream) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment h = a.allocate(ADDRESS);
            check(Driver.call(() -> (int) create.invokeExact(h)), "cublasCreate_v2");
            MemorySegment handle = h.get(ADDRESS, 0);
            check(Driver.call(() -> (int) setStream.invokeExact(handle, stream)), "cublasSetStream_v2");
            return handle;
        }
    }

    /**
     * Gives the handle {@code bytes} of device memory at {@code address} for its kernels' scratch,
     * so cuBLAS allocates nothing of its own (and nothing while a CUDA graph is being captured).
     */
    public void setWorkspace(MemorySegment handle, long address, long bytes) {
        check(Driver.call(() -> (int) setWorkspace.invokeExact(handle, address, bytes)), "cublasSetWorkspace_v2");
    }

    public void destroyHandle(MemorySegment handle) {
        check(Driver.call(() -> (int) destroy.invokeExact(handle)), "cublasDestroy_v2");
    }

    /**
     * C = alpha op(A) op(B) + beta C, column-major: C is (m, n) with leading dimension ldc, op(A)
     * is (m, k), op(B) is (k, n). {@code alphaBeta} holds the two fp32 scalars on the host (fp32
     * compute types take float scalars).
     */
    public void gemm(MemorySegment handle, int transA, int transB, int m, int n, int k, MemorySegment alphaBeta,
                     long a, int aType, int lda, long b, int bType, int ldb, long c, int cType, int ldc, int computeType) {
        MemorySegment alpha = alphaBeta, beta = alphaBeta.asSlice(JAVA_FLOAT.byteSize());
        check(Driver.call(() -> (int) gemmEx.invokeExact(handle, transA, transB, m, n, k, alpha, a, aType, lda, b, bType, ldb,
                beta, c, cType, ldc, computeType, GEMM_DEFAULT)), "cublasGemmEx");
    }

    public void check(int status, String fn) {
        if (status == 0) return;
        throw new CudaException("libcublas", fn, status, NativeLibraries.statusName(statusName, status, "CUBLAS_STATUS_"), null);
    }
}
