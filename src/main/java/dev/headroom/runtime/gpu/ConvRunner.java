package dev.headroom.runtime.gpu;

import static dev.headroom.runtime.gpu.ConvCalls.at;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;

import dev.headroom.core.Precision;
import dev.headroom.core.graph.Act;
import dev.headroom.core.graph.Op;
import dev.headroom.cuda.Cublas;
import dev.headroom.cuda.CudaException;
import dev.headroom.cuda.CudaUnavailable;
import dev.headroom.cuda.Cudnn;
import dev.headroom.runtime.DeviceBuffer;
import dev.headroom.runtime.Tensor;
import dev.headroom.runtime.gpu.ConvCalls.Call;
import dev.headroom.runtime.memory.DeviceMemory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs one convolution call one given way ({@link Convolutions.Strategy}): a cuDNN graph's plan
 * (fused, or followed by headroom's epilogue kernel), a cuBLAS matrix product, or cuDNN's legacy
 * API; which way, and the plans, are {@link Convolutions}' choice. Owns what only running needs:
 * the cuBLAS handle (made at the first 1x1 convolution), the residual scales' device copies and
 * the {1, 0} constants. Uses, without owning, the session's cuDNN handle and stream, the legacy
 * plans and the workspace that {@link Convolutions} keeps ({@link #workspace}).
 */
final class ConvRunner implements AutoCloseable {
    private final CudaOps ops;
    private final Cudnn dnn;
    private final MemorySegment handle;
    private final MemorySegment stream;
    private final DeviceMemory alloc;
    private final Precision precision;
    private final LegacyPlans plans;
    /** Where refusals are said (the owner's list: `bench --json` shows it as graph_failures). */
    private final List<String> failures;
    /** HEADROOM_CUBLAS_GEMM=0 leaves 1x1 convolutions to cuDNN (for comparison; part of the remembered choices' fingerprint). */
    static final boolean GEMM_API = !"0".equals(System.getenv("HEADROOM_CUBLAS_GEMM"));
    private final Arena arena = Arena.ofShared();
    /** {1, 0}: alpha and beta of the legacy forward call and the GEMM. */
    private final MemorySegment alphaBeta;
    private final Map<Float, DeviceBuffer> scalars = new HashMap<>();
    /** cuBLAS's handle on the session's stream, made at the first 1x1 convolution; null before, or when cuBLAS is missing. */
    private MemorySegment blas;
    private boolean blasMissing;
    /** The convolutions' workspace now (null between jobs); cuBLAS is given the same memory. */
    private DeviceBuffer workspace;

    ConvRunner(CudaOps ops, Cudnn dnn, MemorySegment handle, MemorySegment stream, DeviceMemory alloc, Precision precision,
               LegacyPlans plans, List<String> failures) {
        this.ops = ops;
        this.dnn = dnn;
        this.handle = handle;
        this.stream = stream;
        this.alloc = alloc;
        this.precision = precision;
        this.plans = plans;
        this.failures = failures;
        alphaBeta = arena.allocate(JAVA_FLOAT, 2);
        alphaBeta.setAtIndex(JAVA_FLOAT, 0, 1f);
        alphaBeta.setAtIndex(JAVA_FLOAT, 1, 0f);
    }

    /** Whether the GEMM way runs here (HEADROOM_CUBLAS_GEMM not 0, cuBLAS loads); makes the cuBLAS handle on first ask. */
    boolean gemmAvailable() {
        return blas() != null;
    }

    /** The workspace the convolutions keep now, or null once they freed it: plans and cuBLAS run in it. */
    void workspace(DeviceBuffer ws) {
        workspace = ws;
        if (blas != null) Cublas.get().setWorkspace(blas, ws == null ? 0L : ws.address(), ws == null ? 0L : ws.bytes());
    }

    /** Bytes of the residual scales' device copies. */
    long scalarBytes() {
        long b = 0;
        for (DeviceBuffer c : scalars.values()) b += c.bytes();
        return b;
    }

    /** Runs {@code c} the way {@code strategy} says ({@code graph} and its {@code plan} for FUSED and GRAPH). */
    void run(Convolutions.Strategy strategy, ConvGraph graph, int plan, Call c) {
        switch (strategy) {
            case FUSED -> fused(graph, plan, c);
            case GRAPH -> graphThenEpilogue(graph, plan, c);
            case GEMM -> gemm(c);
            case LEGACY -> legacy(c);
        }
    }

    private void fused(ConvGraph cg, int plan, Call c) {
        Op.Conv2d op = c.p().op;
        long s = c.residual() != null && op.residualScale() != 1f ? scalar(op.residualScale()) : 0L;
        long s2 = c.outer() != null && op.outerScale() != 1f ? scalar(op.outerScale()) : 0L;
        CudaConvWeights p = c.p();
        cg.execute(handle, plan, new ConvGraph.Pointers(at(c.in()), p.kernel.address(), p.bias == null ? 0L : p.bias.address(), s,
                at(c.residual()), s2, at(c.outer()), at(c.out()), cg.workspaces.get(plan) > 0 ? workspace.address() : 0L));
    }

    private void graphThenEpilogue(ConvGraph cg, int plan, Call c) {
        Tensor out = c.out();
        boolean direct = out.dense();
        Tensor y = direct ? out : ops.allocate(out.n, out.h, out.w, out.c);
        try {
            cg.execute(handle, plan, new ConvGraph.Pointers(at(c.in()), c.p().kernel.address(), 0L, 0L, 0L, 0L, 0L, at(y),
                    cg.workspaces.get(plan) > 0 ? workspace.address() : 0L));
            epilogueAfter(c, y, direct);
        } finally {
            if (!direct) ops.release(y);
        }
    }

    /**
     * A 1x1 convolution as one matrix product, in place between channel slices. Row-major NHWC is
     * column-major with the pixel stride as leading dimension, so, in cuBLAS's column-major terms:
     * out (cout, P; ld out.stride) = W^T (cout, cin) x in (cin, P; ld in.stride), where the KRSC
     * weights (cout, cin) row-major are (cin, cout; ld cin) column-major, hence OP_T. P counts the
     * pixels of all images: a view's pixels follow each other at one stride. Then the epilogue
     * (bias, activation, residuals) in place on the output.
     */
    private void gemm(Call c) {
        Tensor in = c.in(), out = c.out();
        long pixels = (long) in.n * in.h * in.w;
        if (pixels > Integer.MAX_VALUE) throw new IllegalArgumentException("1x1 convolution over " + pixels + " pixels: more than 2^31 in one call");
        Op.Conv2d op = c.p().op;
        int type = switch (precision) {
            case F32 -> Cublas.R_32F;
            case F16 -> Cublas.R_16F;
            case BF16 -> Cublas.R_16BF;
        };
        Cublas.get().gemm(blas, Cublas.OP_T, Cublas.OP_N, op.cout(), (int) pixels, op.cin(), alphaBeta,
                c.p().kernel.address(), type, op.cin(), at(in), type, in.stride, at(out), type, out.stride, Cublas.COMPUTE_32F);
        epilogueAfter(c, out, true);
    }

    /** cuBLAS's handle, made on first use and given the workspace; null (once said in the failures) where cuBLAS cannot be loaded. */
    MemorySegment blas() {
        if (!GEMM_API) return null;
        if (blas == null && !blasMissing) {
            try {
                blas = Cublas.get().createHandle(stream);
                Cublas.get().setWorkspace(blas, workspace.address(), workspace.bytes());
            } catch (CudaUnavailable | CudaException e) {
                blasMissing = true;
                failures.add("GEMM: " + e.getMessage());
            }
        }
        return blas;
    }

    private void legacy(Call c) {
        CudaConvWeights p = c.p();
        Tensor in = c.in(), out = c.out();
        boolean direct = out.dense();
        Tensor y = direct ? out : ops.allocate(out.n, out.h, out.w, out.c);
        Tensor packed = null;
        try {
            Tensor x = in;
            if (!in.dense()) {
                packed = ops.allocate(in.n, in.h, in.w, in.c);
                ops.copy(in, packed);
                x = packed;
            }
            LegacyPlans.LegacyPlan plan = plans.plan(p.op, x, p.kernel, y, workspace);
            dnn.forward(handle, alphaBeta, plan.x(), x.device.address(), plan.w(), p.kernel.address(), plan.conv(), plan.algo(),
                    plan.workspace() > 0 ? workspace.address() : 0L, plan.workspace(), plan.y(), y.device.address());
            epilogueAfter(c, y, direct);
        } finally {
            if (packed != null) ops.release(packed);
            if (!direct) ops.release(y);
        }
    }

    /**
     * The epilogue pass after an unfused convolution into {@code y} (none when that is already the
     * result), and the outer residual as a second pass in place.
     */
    private void epilogueAfter(Call c, Tensor y, boolean direct) {
        CudaConvWeights p = c.p();
        Act act = p.op.act();
        if (p.bias != null || act.kind() != Act.Kind.NONE || !direct || c.residual() != null) {
            ops.epilogue(y, p.bias == null ? 0L : p.bias.address(), act, p.slope == null ? 0L : p.slope.address(), c.residual(), p.op.residualScale(), c.out());
        }
        if (c.outer() != null) ops.epilogue(c.out(), 0L, Act.NONE, 0L, c.outer(), p.op.outerScale(), c.out());
    }

    /** A device copy of one fp32 value (the residual scale of a fused graph), uploaded once. */
    long scalar(float v) {
        return scalars.computeIfAbsent(v, f -> ops.uploadFloats(new float[] {f})).address();
    }

    /** Frees the scalars and the cuBLAS handle, each even when the other fails; the arena last. */
    @Override
    public void close() {
        dev.headroom.runtime.CloseSteps.run(
                () -> {
                    for (DeviceBuffer b : List.copyOf(scalars.values())) alloc.free(b);
                    scalars.clear();
                },
                () -> {
                    if (blas != null) Cublas.get().destroyHandle(blas);
                    blas = null;
                },
                arena::close);
    }
}
