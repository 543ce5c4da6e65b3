package dev.headroom.runtime.gpu;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import dev.headroom.core.Precision;
import dev.headroom.core.graph.Op;
import dev.headroom.cuda.Cublas;
import dev.headroom.cuda.Driver;
import dev.headroom.runtime.DeviceBuffer;
import dev.headroom.runtime.Tensor;
import dev.headroom.runtime.memory.DeviceMemory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.Map;

/**
 * The CUDA side of the diffusion-VAE ops (vae_kernels.cu), on the owning backend's stream and
 * memory: GroupNorm statistics (fp32 per row and group, added in double on the host) and
 * normalisation, the encoder's strided convolution, and attention.
 *
 * <p>Attention is memory-bounded: queries go in chunks of m rows; for each, one cuBLAS GEMM makes
 * the fp32 scores of those m queries against every key (m x positions), a kernel turns each row
 * into probabilities (exact softmax: the whole row is there), and a second GEMM multiplies them
 * with the values. The workspace is m x positions x (4 + element) bytes, m chosen so that stays
 * under {@link #ATTENTION_WORKSPACE}: memory grows with the positions, never with their square.
 */
final class VaeKernels implements AutoCloseable {
    /** Bytes of scores and probabilities one attention chunk may use. */
    static final long ATTENTION_WORKSPACE = 256L << 20;
    /** cuBLAS's own scratch for this handle. */
    static final long BLAS_WORKSPACE = 32L << 20;
    private static final String[] KERNELS = {"gn_stats", "gn_apply", "strided_conv", "softmax_rows"};

    private final Driver cu;
    private final MemorySegment stream;
    private final DeviceMemory alloc;
    private final Precision precision;
    private final MemorySegment module;
    private final Map<String, MemorySegment> fns = new HashMap<>();
    private final Map<float[], DeviceBuffer> constants = new IdentityHashMap<>();
    private MemorySegment blas;
    private DeviceBuffer blasWorkspace;

    VaeKernels(Driver cu, int device, MemorySegment stream, DeviceMemory alloc, Precision precision) {
        this.cu = cu;
        this.stream = stream;
        this.alloc = alloc;
        this.precision = precision;
        int major = cu.attribute(Driver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device);
        int minor = cu.attribute(Driver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device);
        module = cu.moduleLoad(KernelCache.cubin("/dev/headroom/runtime/gpu/vae_kernels.cu", major, minor, cu));
        String suffix = "_" + switch (precision) { case F32 -> "f32"; case F16 -> "f16"; case BF16 -> "bf16"; };
        for (String k : KERNELS) fns.put(k, cu.function(module, k + suffix));
    }

    void groupNormStats(Tensor in, int groups, double[] acc) {
        int rows = in.n * in.h;
        DeviceBuffer partial = workspace((long) rows * groups * 2 * Float.BYTES);
        try {
            launch("gn_stats", rows, groups, 256, 1, at(in), in.stride, 0, in.w, in.c, groups, partial.address());
            float[] host = new float[rows * groups * 2];
            cu.streamSynchronize(stream);
            try (Arena a = Arena.ofConfined()) {
                MemorySegment seg = a.allocate(JAVA_FLOAT, host.length);
                cu.copyDtoH(seg, partial.address(), (long) host.length * Float.BYTES);
                MemorySegment.copy(seg, JAVA_FLOAT, 0, host, 0, host.length);
            }
            int per = in.c / groups;
            for (int r = 0; r < rows; r++) {
                int b = r / in.h;
                for (int g = 0; g < groups; g++) {
                    int at = (b * groups + g) * 3;
                    acc[at] += (double) in.w * per;
                    acc[at + 1] += host[(r * groups + g) * 2];
                    acc[at + 2] += host[(r * groups + g) * 2 + 1];
                }
            }
        } finally {
            alloc.free(partial);
        }
    }

    void groupNormApply(Tensor in, Op.GroupNorm op, float[] meanRstd, float[] gamma, float[] beta, Tensor out) {
        DeviceBuffer mr = upload(meanRstd);   // per call: the statistics change with every image
        try {
            long pixels = (long) out.n * out.h * out.w;
            launch("gn_apply", (out.c + 31) / 32, (int) Math.min((pixels + 7) / 8, 65535), 32, 8,
                    at(in), in.stride, 0, mr.address(), constant(gamma), constant(beta), op.silu() ? 1 : 0,
                    at(out), out.stride, 0, pixels, (long) out.h * out.w, out.c, op.groups());
            cu.streamSynchronize(stream);   // before mr goes back to the allocator for another use
        } finally {
            alloc.free(mr);
        }
    }

    void stridedConv(Tensor in, Op.StridedConv op, float[] kernel, float[] bias, Tensor out) {
        long pixels = (long) out.n * out.h * out.w;
        launch("strided_conv", (op.cout() + 31) / 32, (int) Math.min((pixels + 7) / 8, 65535), 32, 8,
                at(in), in.stride, 0, constant(kernel), bias == null ? 0L : constant(bias), at(out), out.stride, 0,
                in.n, in.h, in.w, op.cin(), out.h, out.w, op.cout(), op.k(), op.stride(), op.padTop(), op.padLeft());
    }

    void attention(Tensor q, Tensor k, Tensor v, float scale, Tensor out) {
        int queries = q.h * q.w, keys = k.h * k.w;
        long perRow = (long) keys * (Float.BYTES + precision.bytes);
        int m = (int) Math.max(1, Math.min(queries, ATTENTION_WORKSPACE / perRow));
        int type = switch (precision) { case F32 -> Cublas.R_32F; case F16 -> Cublas.R_16F; case BF16 -> Cublas.R_16BF; };
        int compute = precision == Precision.F32 ? Cublas.COMPUTE_32F_PEDANTIC : Cublas.COMPUTE_32F;
        long e = precision.bytes;
        DeviceBuffer ws = workspace(m * perRow);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment scaled = a.allocate(JAVA_FLOAT, 2), unit = a.allocate(JAVA_FLOAT, 2);
            scaled.setAtIndex(JAVA_FLOAT, 0, scale);
            unit.setAtIndex(JAVA_FLOAT, 0, 1f);
            long scores = ws.address(), probs = ws.address() + (long) m * keys * Float.BYTES;
            MemorySegment h = handle();
            Cublas blasLib = Cublas.get();
            for (int b = 0; b < q.n; b++) {
                long kb = at(k) + (long) b * keys * k.stride * e, vb = at(v) + (long) b * keys * v.stride * e;
                for (int r0 = 0; r0 < queries; r0 += m) {
                    int rows = Math.min(m, queries - r0);
                    long qb = at(q) + ((long) b * queries + r0) * q.stride * e, ob = at(out) + ((long) b * queries + r0) * out.stride * e;
                    // scores^T (keys x rows, column-major) = K (keys x C) . Q_chunk^T (C x rows)
                    blasLib.gemm(h, Cublas.OP_T, Cublas.OP_N, keys, rows, q.c, scaled, kb, type, k.stride, qb, type, q.stride,
                            scores, Cublas.R_32F, keys, compute);
                    launch("softmax_rows", rows, 1, 256, 1, scores, probs, keys);
                    // out_chunk^T (C x rows) = V^T (C x keys) . P^T (keys x rows)
                    blasLib.gemm(h, Cublas.OP_N, Cublas.OP_N, v.c, rows, keys, unit, vb, type, v.stride, probs, type, keys,
                            ob, type, out.stride, compute);
                }
            }
            cu.streamSynchronize(stream);   // the host scalars and the workspace must outlive the queued work
        } finally {
            alloc.free(ws);
        }
    }

    private MemorySegment handle() {
        if (blas == null) {
            try (var scope = alloc.tag("workspace", "cublas")) {
                blasWorkspace = alloc.allocate(BLAS_WORKSPACE, stream.address());
            }
            blas = Cublas.get().createHandle(stream);
            Cublas.get().setWorkspace(blas, blasWorkspace.address(), blasWorkspace.bytes());
        }
        return blas;
    }

    private DeviceBuffer workspace(long bytes) {
        try (var scope = alloc.tag("workspace", null)) {
            return alloc.allocate(Math.max(bytes, 256), stream.address());
        }
    }

    /** A weight's fp32 device copy, made once per array. */
    private long constant(float[] a) {
        return constants.computeIfAbsent(a, this::upload).address();
    }

    private DeviceBuffer upload(float[] a) {
        DeviceBuffer b;
        try (var scope = alloc.tag("weights", null)) {
            b = alloc.allocate((long) Math.max(1, a.length) * Float.BYTES, stream.address());
        }
        // on the session's stream (not blocking the legacy one, so a synchronous copy would not be ordered with it)
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(JAVA_FLOAT, Math.max(1, a.length));
            MemorySegment.copy(a, 0, seg, JAVA_FLOAT, 0, a.length);
            cu.copyHtoDAsync(b.address(), seg, (long) a.length * Float.BYTES, stream);
            cu.streamSynchronize(stream);
        }
        return b;
    }

    /** Address of channel 0 of a view (these kernels take the offset folded into the pointer). */
    private static long at(Tensor t) {
        return t.device.address() + (long) t.offset * t.precision.bytes;
    }

    /** Arguments are Long (pointers and 64-bit), Integer or Float. */
    private void launch(String fn, int gx, int gy, int bx, int by, Object... args) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment params = a.allocate(ADDRESS, args.length);
            for (int i = 0; i < args.length; i++) {
                MemorySegment val = switch (args[i]) {
                    case Long l -> a.allocateFrom(JAVA_LONG, l);
                    case Integer n -> a.allocateFrom(JAVA_INT, n);
                    case Float f -> a.allocateFrom(JAVA_FLOAT, f);
                    default -> throw new IllegalArgumentException("kernel argument " + args[i]);
                };
                params.setAtIndex(ADDRESS, i, val);
            }
            cu.launch(fns.get(fn), gx, gy, 1, bx, by, 1, 0, stream, params);
        }
    }

    @Override
    public void close() {
        cu.streamSynchronize(stream);
        if (blas != null) Cublas.get().destroyHandle(blas);
        if (blasWorkspace != null) alloc.free(blasWorkspace);
        for (DeviceBuffer b : constants.values()) alloc.free(b);
        constants.clear();
        cu.moduleUnload(module);
    }
}
