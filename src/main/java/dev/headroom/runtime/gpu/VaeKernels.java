package dev.headroom.runtime.gpu;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;

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
 * The CUDA side of the diffusion-VAE ops (vae_kernels.cu), on the owning session's stream and
 * memory: GroupNorm, the encoder's strided convolution, and attention. Nothing here waits for the
 * device or allocates once a pass has run once, so a VAE decode can be recorded as a CUDA graph.
 *
 * <p>GroupNorm's statistics never leave the device: {@code gn_stats} writes fp32 sums per row of
 * pixels and group in a fixed order, {@code gn_accumulate} adds them in row order to double
 * sums per (image, group) kept on the device and writes (mean, rstd) beside them, and
 * {@code gn_apply} reads those. Gathered band by band ({@link #normStats}), the additions are the
 * whole image's in the same order, so GroupNorm gives a tiled decode the untiled one's statistics
 * bit for bit. (The decode as a whole is within 1 LSB, not equal: attention in the untiled decode
 * runs in larger chunks in the arena, the tiled one's in lent scratch; 4.04% of a 4096x4096 SDXL
 * decode's values differed on the H200, 1d08030.)
 * Where C is a multiple of 8 (every SD-family VAE), {@code gn_stats8} and {@code gn_apply8} take
 * lanes of 8 channels with 16-byte accesses (one channel per thread and 2-byte accesses before);
 * {@code gn_affine8} normalises as y = x * a + d with a and d per (image, channel) worked out once per thread;
 * {@code gn_affine8x2} (the default) does the same two pixels at a time, beside {@code gn_stats8b} (see {@link #affine2}).
 *
 * <p>Attention is memory-bounded: queries go in chunks of m rows; for each, one cuBLAS GEMM makes
 * the fp32 scores of those m queries against every key (m x positions), a kernel turns each row
 * into exps of the scores less the row's maximum, with the row's sum (exact softmax: the whole row
 * is there), a second GEMM multiplies them with the values into fp32, and a last kernel divides
 * each row by its sum. Normalised probabilities, stored in fp16, would be subnormal at 16,384 and
 * more positions: in a numpy emulation (scores ~N(0,1)) that made a relative error of 2.7e-3 at
 * 262,144 positions (a 4096x4096 decode), against 1.9e-4 this way. The workspace is about m x
 * positions x (4 + element) bytes, m at most {@link #ATTENTION_ROWS} and so that it stays under
 * {@link #ATTENTION_WORKSPACE}: memory grows with the positions, never with their square. It is
 * the convolutions' workspace, lent (CudaOps.attention), so it costs nothing beside it where it
 * fits; or, in a decode whose plan has room at attention's step, scratch in the plan's arena, in
 * chunks of up to 4,096 queries ({@link #arenaChunks}). GroupNorm's small scratch is kept between
 * calls (a recording may not allocate).
 */
final class VaeKernels implements AutoCloseable {
    /**
     * Bytes of scores and probabilities one attention chunk may use. At 4096x4096 (262,144
     * positions) a chunk is 85 queries, whose GEMMs still do about 85 flops per byte of keys read.
     */
    static final long ATTENTION_WORKSPACE = 128L << 20;
    /** Queries per chunk at most (see {@link #chunkRows}). */
    static final int ATTENTION_ROWS = 256;
    /**
     * cuBLAS's scratch for attention's GEMMs, after the chunk in the lent scratch. 4 MiB is what the
     * H200 figures were measured with; cuBLAS asks for 32 MiB on Hopper (split-K for P.V, which
     * reduces over every key into a small output): untried, and at 1024 it would still fit the
     * convolutions' 64 MiB workspace.
     */
    static final long BLAS_WORKSPACE = 4L << 20;
    /** Widest GroupNorm input gn_stats takes (GN_MAX_C in vae_kernels.cu). */
    static final int GN_MAX_C = 2048;
    private static final String[] KERNELS = {"gn_stats", "gn_apply", "gn_stats8", "gn_apply8", "gn_affine8", "gn_affine8x2", "gn_stats8b", "strided_conv", "softmax_rows", "softmax_rows4", "scale_rows"};

    /**
     * Whether GroupNorm takes lanes of 8 channels where C allows (gn_stats8, gn_apply8); HEADROOM_VAE_GN=scalar
     * keeps one channel per thread (gn_stats, gn_apply), for comparison. Statistics differ between the two in
     * the order of their fp32 additions, so a decode's bands and its whole image must use the same.
     */
    private static final boolean lanes8 = !"scalar".equals(gnKernels());
    /**
     * Whether the lanes of 8 normalise with a scale and shift per (image, channel) worked out once per
     * thread and SiLU's hardware exp and reciprocal (gn_affine8, the default), or each value's
     * (x - mean) * rstd * gamma + beta and a precise exp and division (gn_apply8: HEADROOM_VAE_GN=lanes8).
     */
    private static final boolean affine = lanes8 && !"lanes8".equals(gnKernels());
    /**
     * Whether the affine lanes of 8 take two pixels a thread at a time (gn_affine8x2, 64 registers, 4 blocks a
     * multiprocessor) and the 16-bit statistics a kernel held to 32 registers (gn_stats8b: 8 blocks a multiprocessor,
     * so 1,024 rows run in one wave): the default, affine2. HEADROOM_VAE_GN=affine keeps gn_affine8 and gn_stats8, one
     * pixel a thread at a time. The same arithmetic either way: the values are equal bit for bit.
     */
    private static final boolean affine2 = affine && !"affine".equals(gnKernels());

    /** HEADROOM_VAE_GN (or -Dheadroom.vae-gn): scalar, lanes8, affine or affine2 (the default), for comparison on the device. */
    private static String gnKernels() {
        return switchValue("HEADROOM_VAE_GN", System.getProperty("headroom.vae-gn", System.getenv("HEADROOM_VAE_GN")), "affine2",
                java.util.List.of("scalar", "lanes8", "affine", "affine2"));
    }

    /**
     * A kernel switch's value, or its default when unset; a value it does not know is refused (a typo must not
     * quietly measure the default), as HEADROOM_CONV_START is.
     */
    static String switchValue(String name, String value, String otherwise, java.util.List<String> known) {
        if (value == null || value.isBlank()) return otherwise;
        if (!known.contains(value)) {
            throw new IllegalArgumentException(name + "=" + value + " is not a choice: use one of " + String.join(", ", known)
                    + " (default " + otherwise + ")");
        }
        return value;
    }

    private final Driver cu;
    private final MemorySegment stream;
    private final DeviceMemory alloc;
    private final Precision precision;
    private final MemorySegment module;
    private final Map<String, MemorySegment> fns = new HashMap<>();
    private final Map<float[], DeviceBuffer> constants = new IdentityHashMap<>();
    private MemorySegment blas;
    /** Kept scratch: a whole-image GroupNorm's row sums, and its statistics. */
    private DeviceBuffer normPartial, normStats;

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
        fns.put("gn_accumulate", cu.function(module, "gn_accumulate"));
    }

    /** Per (image, group) the host's layout of {@link dev.headroom.runtime.Ops#groupNormStats}: adds this tensor's statistics to acc (waits for the device). */
    void groupNormStats(Tensor in, int groups, double[] acc) {
        int rows = in.n * in.h;
        DeviceBuffer partial = workspace((long) rows * groups * 2 * Float.BYTES);
        try {
            rowSums(in, groups, partial.address());
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

    /** Normalises with host statistics (uploaded, then waited for): the op tests' entry; decodes keep theirs on the device. */
    void groupNormApply(Tensor in, Op.GroupNorm op, float[] meanRstd, float[] gamma, float[] beta, Tensor out) {
        DeviceBuffer mr = upload(meanRstd);
        try {
            apply(in, op, mr.address(), gamma, beta, out);
            cu.streamSynchronize(stream);   // before mr goes back to the allocator for another use
        } finally {
            alloc.free(mr);
        }
    }

    /** A whole image's GroupNorm: statistics into the kept scratch, then normalisation; no wait, and no allocation after the first call of a size. */
    void groupNorm(Tensor in, Op.GroupNorm op, float[] gamma, float[] beta, Tensor out) {
        int groups = op.groups(), rows = in.n * in.h;
        normPartial = kept(normPartial, (long) rows * groups * 2 * Float.BYTES);
        normStats = kept(normStats, (long) in.n * groups * (3 * Double.BYTES + 2 * Float.BYTES));
        long acc = normStats.address(), meanRstd = acc + (long) in.n * groups * 3 * Double.BYTES;
        rowSums(in, groups, normPartial.address());
        accumulate(normPartial.address(), in, op, true, acc, meanRstd);
        apply(in, op, meanRstd, gamma, beta, out);
    }

    /** Statistics of one GroupNorm gathered band by band on the device (see the class comment). */
    dev.headroom.runtime.Ops.NormStats normStats(Op.GroupNorm op, int images) {
        DeviceBuffer held;
        try (var scope = alloc.tag("activations", "group norm statistics")) {
            held = alloc.allocate((long) images * op.groups() * (3 * Double.BYTES + 2 * Float.BYTES), stream.address());
        }
        long acc = held.address(), meanRstd = acc + (long) images * op.groups() * 3 * Double.BYTES;
        return new dev.headroom.runtime.Ops.NormStats() {
            boolean first = true;

            @Override
            public void add(Tensor band) {
                if (band.n != images) throw new IllegalArgumentException("band of " + band.n + " images for statistics of " + images);
                DeviceBuffer partial = workspace((long) band.n * band.h * op.groups() * 2 * Float.BYTES);
                try {
                    rowSums(band, op.groups(), partial.address());
                    accumulate(partial.address(), band, op, first, acc, meanRstd);
                    first = false;
                } finally {
                    alloc.free(partial);   // stream-ordered: later work on this stream runs after the kernels that read it
                }
            }

            @Override
            public void apply(Tensor in, float[] gamma, float[] beta, Tensor out) {
                if (first) throw new IllegalStateException("group norm applied before any statistics were added");
                VaeKernels.this.apply(in, op, meanRstd, gamma, beta, out);
            }

            @Override
            public void close() {
                alloc.free(held);
            }
        };
    }

    /** gn_stats: fp32 sums per row of pixels and group into partial ((rows, groups, 2) floats). */
    private void rowSums(Tensor in, int groups, long partial) {
        if (in.c > GN_MAX_C || groups > 256) {
            throw new IllegalArgumentException("group norm over " + in.c + " channels in " + groups + " groups: the CUDA kernel takes at most " + GN_MAX_C + " channels and 256 groups");
        }
        if (in.c % 8 == 0 && lanes8) {
            // lanes of 8 channels (16-byte loads where aligned): the order of additions depends on W and C alone, as gn_stats's
            String k = affine2 && in.precision != Precision.F32 ? "gn_stats8b" : "gn_stats8";   // gn_stats8b spills in fp32
            launch(k, in.n * in.h, 1, 256, 1, at(in), in.stride, 0, in.w, in.c, groups, vectors(in) ? 1 : 0, partial);
            return;
        }
        launch("gn_stats", in.n * in.h, 1, 256, 1, at(in), in.stride, 0, in.w, in.c, groups, partial);
    }

    /** Whether every 8 channels of a view, starting at channel 0 of a pixel, lie in one aligned 16-byte (16-bit) or two (fp32) accesses. */
    private static boolean vectors(Tensor t) {
        return (at(t) & 15) == 0 && ((long) t.stride * t.precision.bytes) % 16 == 0;
    }

    /** gn_accumulate: the rows' sums added in order to acc (from zero when reset), (mean, rstd) written to meanRstd. */
    private void accumulate(long partial, Tensor in, Op.GroupNorm op, boolean reset, long acc, long meanRstd) {
        launch("gn_accumulate", in.n, 1, 256, 1, partial, in.n, in.h, op.groups(),
                (double) in.w * (in.c / op.groups()), reset ? 1 : 0, op.eps(), acc, meanRstd);
    }

    private void apply(Tensor in, Op.GroupNorm op, long meanRstd, float[] gamma, float[] beta, Tensor out) {
        long pixels = (long) out.n * out.h * out.w;
        if (out.c % 8 == 0 && affine && out.c <= GN_MAX_C && out.n <= 65535) {
            int cl = out.c / 8, pl = 256 / cl;
            long hw = (long) out.h * out.w;
            // at most 8,192 blocks in all, so each thread's scale and shift serve several pixels (8 at 128 channels of 1024x1024)
            launch(affine2 ? "gn_affine8x2" : "gn_affine8", (int) Math.min((hw + pl - 1) / pl, Math.max(1, 8192 / out.n)), out.n, 256, 1,
                    at(in), in.stride, 0, meanRstd, constant(gamma), constant(beta), op.silu() ? 1 : 0,
                    at(out), out.stride, 0, hw, out.c, op.groups(), vectors(in) && vectors(out) ? 1 : 0);
            return;
        }
        if (out.c % 8 == 0 && lanes8) {
            long lanes = pixels * (out.c / 8);
            launch("gn_apply8", (int) Math.min((lanes + 255) / 256, 1 << 20), 1, 256, 1,
                    at(in), in.stride, 0, meanRstd, constant(gamma), constant(beta), op.silu() ? 1 : 0,
                    at(out), out.stride, 0, pixels, (long) out.h * out.w, out.c, op.groups(), vectors(in) && vectors(out) ? 1 : 0);
            return;
        }
        launch("gn_apply", (out.c + 31) / 32, (int) Math.min((pixels + 7) / 8, 65535), 32, 8,
                at(in), in.stride, 0, meanRstd, constant(gamma), constant(beta), op.silu() ? 1 : 0,
                at(out), out.stride, 0, pixels, (long) out.h * out.w, out.c, op.groups());
    }

    void stridedConv(Tensor in, Op.StridedConv op, float[] kernel, float[] bias, Tensor out) {
        long pixels = (long) out.n * out.h * out.w;
        launch("strided_conv", (op.cout() + 31) / 32, (int) Math.min((pixels + 7) / 8, 65535), 32, 8,
                at(in), in.stride, 0, constant(kernel), bias == null ? 0L : constant(bias), at(out), out.stride, 0,
                in.n, in.h, in.w, op.cin(), out.h, out.w, op.cout(), op.k(), op.stride(), op.padTop(), op.padLeft());
    }

    /**
     * out = softmax(q k^T * scale) v in chunks of queries (see the class comment); {@code shared}
     * is scratch of at least {@link #attentionNeed} bytes lent for this call (the convolutions'
     * workspace, idle while attention runs on the same stream): the chunk's scores, exps and sums,
     * then cuBLAS's workspace.
     */
    void attention(Tensor q, Tensor k, Tensor v, float scale, Tensor out, DeviceBuffer shared) {
        int queries = q.h * q.w, keys = k.h * k.w;
        long need = attentionNeed(queries, keys, v.c, precision);
        if (shared.bytes() < need) throw new IllegalArgumentException("attention scratch of " + shared.bytes() + " bytes; it needs " + need);
        attention(q, k, v, scale, out, shared, chunkRows(queries, keys, v.c, precision), BLAS_WORKSPACE, false);
    }

    /**
     * {@link #attention} in scratch of the plan's arena ({@link #arenaChunks}): the largest chunk of
     * queries whose scores, exps and cuBLAS workspace ({@link #ARENA_BLAS_WORKSPACE}) fit in it.
     */
    void attentionInArena(Tensor q, Tensor k, Tensor v, float scale, Tensor out, DeviceBuffer scratch) {
        int queries = q.h * q.w, keys = k.h * k.w, m = 0;
        for (int rows : arenaRows(queries, keys, v.c, precision)) {
            if (arenaNeed(rows, keys, v.c, precision) <= scratch.bytes()) m = rows;
        }
        if (m == 0) throw new IllegalArgumentException("attention scratch of " + scratch.bytes() + " bytes in the arena; it needs "
                + arenaNeed(arenaRows(queries, keys, v.c, precision)[0], keys, v.c, precision));
        attention(q, k, v, scale, out, scratch, m, ARENA_BLAS_WORKSPACE, SOFTMAX4);
    }

    /** Queries per chunk of the last attention (0 before any), for reports. */
    int attentionRows() {
        return lastRows;
    }

    private int lastRows;

    /** @param wide whether the softmax may take softmax_rows4 (16-byte loads) where the keys allow */
    private void attention(Tensor q, Tensor k, Tensor v, float scale, Tensor out, DeviceBuffer shared, int m, long blasBytes, boolean wide) {
        int queries = q.h * q.w, keys = k.h * k.w;
        lastRows = m;
        int type = switch (precision) { case F32 -> Cublas.R_32F; case F16 -> Cublas.R_16F; case BF16 -> Cublas.R_16BF; };
        int compute = precision == Precision.F32 ? Cublas.COMPUTE_32F_PEDANTIC : Cublas.COMPUTE_32F;
        long e = precision.bytes;
        // scores (fp32), exps (storage type), 1/sum per row and the fp32 output, each 16-byte aligned
        long probsAt = (long) m * keys * Float.BYTES, invAt = align16(probsAt + (long) m * keys * e), accAt = align16(invAt + (long) m * Float.BYTES);
        // 16-byte score loads where each row starts on 16 bytes (keys % 4 == 0; scores and exps are 16-byte aligned)
        boolean softmax4 = wide && keys % 4 == 0;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment scaled = a.allocate(JAVA_FLOAT, 2), unit = a.allocate(JAVA_FLOAT, 2);
            scaled.setAtIndex(JAVA_FLOAT, 0, scale);
            unit.setAtIndex(JAVA_FLOAT, 0, 1f);
            long scores = shared.address(), probs = scores + probsAt, inv = scores + invAt, acc = scores + accAt;
            MemorySegment h = handle();
            Cublas blasLib = Cublas.get();
            blasLib.setWorkspace(h, scores + blasAt(m, keys, v.c, precision), blasBytes);   // a host-side setting: nothing is queued
            for (int b = 0; b < q.n; b++) {
                long kb = at(k) + (long) b * keys * k.stride * e, vb = at(v) + (long) b * keys * v.stride * e;
                for (int r0 = 0; r0 < queries; r0 += m) {
                    int rows = Math.min(m, queries - r0);
                    long qb = at(q) + ((long) b * queries + r0) * q.stride * e, ob = at(out) + ((long) b * queries + r0) * out.stride * e;
                    // scores^T (keys x rows, column-major) = K (keys x C) . Q_chunk^T (C x rows)
                    blasLib.gemm(h, Cublas.OP_T, Cublas.OP_N, keys, rows, q.c, scaled, kb, type, k.stride, qb, type, q.stride,
                            scores, Cublas.R_32F, keys, compute);
                    launch(softmax4 ? "softmax_rows4" : "softmax_rows", rows, 1, 256, 1, scores, probs, inv, keys);
                    // acc^T (C x rows, fp32) = V^T (C x keys) . E^T (keys x rows); then out_chunk = acc / sums by row
                    blasLib.gemm(h, Cublas.OP_N, Cublas.OP_N, v.c, rows, keys, unit, vb, type, v.stride, probs, type, keys,
                            acc, Cublas.R_32F, v.c, compute);
                    launch("scale_rows", (v.c + 31) / 32, Math.min((rows + 7) / 8, 65535), 32, 8, acc, inv, ob, out.stride, rows, v.c);
                }
            }
            // cuBLAS reads host-pointer scalars before gemm returns; the scratch is the caller's: nothing to wait for
        }
    }

    /**
     * Queries per chunk: at most {@link #ATTENTION_ROWS}, and fewer where their scores would pass
     * {@link #ATTENTION_WORKSPACE}. At 1024x1024 (16,384 positions) a chunk of 256 queries takes
     * 25 MB (1,365 queries took the whole 128 MiB), and its GEMMs still do 256 flops per byte of
     * keys read.
     */
    static int chunkRows(long queries, long keys, int channels, Precision precision) {
        long perRow = keys * (Float.BYTES + precision.bytes) + Float.BYTES + (long) channels * Float.BYTES;   // scores, exps, 1/sum, fp32 output
        return (int) Math.max(1, Math.min(Math.min(queries, ATTENTION_ROWS), ATTENTION_WORKSPACE / perRow));
    }

    /**
     * Scratch sizes, smallest first, for attention's chunks in the plan's arena (CudaMemoryModel#arenaScratch):
     * chunks of {@link #chunkRows} queries, then 512, 1,024, 2,048 and 4,096 ({@link #ARENA_ROWS}; at most the queries, and
     * {@link #ARENA_MAX} bytes), each with {@link #ARENA_BLAS_WORKSPACE} for cuBLAS. Chunks of 256 queries
     * over 65,536 keys (FLUX at 2048) made GEMMs of 256 x 65,536 x 512, whose P.V has only 8 output
     * tiles of 128 x 128 for 132 SMs; the planner gives the largest that leaves the peak as it was.
     * None with HEADROOM_VAE_ATTENTION=lent (or -Dheadroom.vae-attention=lent): chunks of at most 256
     * queries in the convolutions' workspace, as before, for comparison.
     */
    static long[] arenaChunks(long positions, int channels, Precision precision) {
        if (!ARENA) return new long[0];
        int[] rows = arenaRows(positions, positions, channels, precision);
        long[] bytes = new long[rows.length];
        for (int i = 0; i < rows.length; i++) bytes[i] = arenaNeed(rows[i], positions, channels, precision);
        return bytes;
    }

    /** The chunk sizes {@link #arenaChunks} offers, in queries, smallest first. */
    static int[] arenaRows(long queries, long keys, int channels, Precision precision) {
        int least = chunkRows(queries, keys, channels, precision);
        java.util.List<Integer> rows = new java.util.ArrayList<>(java.util.List.of(least));
        for (int m = 512; m <= ARENA_ROWS && rows.getLast() < queries; m *= 2) {
            int r = (int) Math.min(m, queries);
            if (r > rows.getLast() && arenaNeed(r, keys, channels, precision) <= ARENA_MAX) rows.add(r);
        }
        return rows.stream().mapToInt(Integer::intValue).toArray();
    }

    private static long arenaNeed(long m, long keys, int channels, Precision precision) {
        return blasAt(m, keys, channels, precision) + ARENA_BLAS_WORKSPACE;
    }

    /**
     * Whether attention in the arena takes softmax_rows4 (16-byte loads of scores) rather than softmax_rows: the
     * default; HEADROOM_VAE_SOFTMAX=scalar (or -Dheadroom.vae-softmax=scalar) keeps softmax_rows. Measured side by side
     * on an H200 (v18's first call): FLUX 2048 attention 26.5 ms against 29.4 (forward 109.5 against 111.5 ms), SDXL
     * 1024 forward 24.0 against 25.0 ms; both within 1 LSB of PyTorch.
     */
    private static final boolean SOFTMAX4 = !"scalar".equals(switchValue("HEADROOM_VAE_SOFTMAX",
            System.getProperty("headroom.vae-softmax", System.getenv("HEADROOM_VAE_SOFTMAX")), "rows4", java.util.List.of("rows4", "scalar")));

    /** Whether attention takes its chunks in the plan's arena where the plan gives it room (the default; see {@link #arenaChunks}). */
    private static final boolean ARENA = !"lent".equals(System.getProperty("headroom.vae-attention", System.getenv("HEADROOM_VAE_ATTENTION")));
    /** Queries per chunk at most in the arena: 4,096, or HEADROOM_VAE_ATTENTION_ROWS (-Dheadroom.vae-attention-rows), for comparison. */
    static final int ARENA_ROWS = Integer.parseInt(System.getProperty("headroom.vae-attention-rows", System.getenv().getOrDefault("HEADROOM_VAE_ATTENTION_ROWS", "4096")));
    /** Bytes one chunk in the arena may take at most. */
    static final long ARENA_MAX = 2L << 30;
    /** cuBLAS's workspace beside chunks in the arena: what it asks for on Hopper (split-K for P.V, whose output is small). */
    static final long ARENA_BLAS_WORKSPACE = 32L << 20;

    /** Scratch bytes one attention call takes: its chunk ({@link #attentionBytes}), then cuBLAS's workspace (256-byte aligned). */
    static long attentionNeed(long queries, long keys, int channels, Precision precision) {
        return blasAt(chunkRows(queries, keys, channels, precision), keys, channels, precision) + BLAS_WORKSPACE;
    }

    private static long blasAt(long m, long keys, int channels, Precision precision) {
        return (attentionBytes(m, keys, channels, precision) + 255) / 256 * 256;
    }

    private MemorySegment handle() {
        if (blas == null) blas = Cublas.get().createHandle(stream);
        return blas;
    }

    private static long align16(long bytes) {
        return (bytes + 15) / 16 * 16;
    }

    /** Bytes of attention's workspace for chunks of {@code m} queries over {@code keys} keys of {@code channels} channels. */
    static long attentionBytes(long m, long keys, int channels, Precision precision) {
        return align16(align16(m * keys * (Float.BYTES + precision.bytes)) + m * Float.BYTES) + m * channels * Float.BYTES;
    }

    /** {@code held} if it has at least {@code bytes}, else a new buffer of that size (the old one freed, stream-ordered). */
    private DeviceBuffer kept(DeviceBuffer held, long bytes) {
        if (held != null && held.bytes() >= bytes) return held;
        if (held != null) alloc.free(held);
        return workspace(bytes);
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

    /** Arguments are Long (pointers and 64-bit), Integer, Float or Double ({@link KernelLaunch}). */
    private void launch(String fn, int gx, int gy, int bx, int by, Object... args) {
        KernelLaunch.launch(cu, fns.get(fn), gx, gy, bx, by, stream, args);
    }

    @Override
    public void close() {
        cu.streamSynchronize(stream);
        if (blas != null) Cublas.get().destroyHandle(blas);
        for (DeviceBuffer b : constants.values()) alloc.free(b);
        constants.clear();
        for (DeviceBuffer b : new DeviceBuffer[] {normPartial, normStats}) if (b != null) alloc.free(b);
        cu.moduleUnload(module);
    }
}
