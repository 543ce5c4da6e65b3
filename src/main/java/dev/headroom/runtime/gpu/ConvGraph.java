package dev.headroom.runtime.gpu;

import dev.headroom.core.graph.Act;
import dev.headroom.cuda.Cudnn;
import dev.headroom.cuda.CudnnGraph;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * One convolution shape as a cuDNN operation graph, with the execution plans cuDNN offers for it.
 * Fused, the graph is the whole step the graph runner asks for:
 * <pre>
 *   y = oscale * (rscale * act(conv(x, w) + bias) + r) + r2    // x (N,H,W,Cin); y, r, r2 (N,H,W,Cout); any may be a channel slice
 * </pre>
 * so one kernel reads the input slice in place and writes the output slice, with no separate
 * epilogue pass and no packed copy. Unfused, it is the convolution alone into a dense output.
 * Tensors are bound by uid ({@link #X} ... {@link #Y}); intermediate results are virtual (fp32, in
 * registers). Which plan runs is chosen by timing ({@link Convolutions}); {@link #keep} drops the rest.
 */
final class ConvGraph implements AutoCloseable {
    static final long X = 1, W = 2, B = 3, S = 4, R = 5, S2 = 7, R2 = 8, Y = 6;
    private static final int MAX_VARIANT_PACKS = 256;

    /** Everything that makes two convolutions share a graph; strides are channels per pixel. */
    record Spec(int dataType, int n, int h, int w, int cin, int xStride, int cout, int yStride, int kh, int kw, int padH, int padW,
                boolean bias, Act.Kind act, float leak, boolean residual, int rStride, float rscale,
                boolean outer, int oStride, float oscale, boolean fused) {
        /** Whether cuDNN's pointwise operators can express the epilogue (PReLU's per-channel slope and SiLU are left to headroom's epilogue). */
        boolean fusable() {
            return act != Act.Kind.PRELU && act != Act.Kind.SILU;
        }
    }

    /** The device pointers of one call; 0 for a tensor the graph does not have. */
    record Pointers(long x, long w, long b, long s, long r, long s2, long r2, long y, long workspace) {}

    private final CudnnGraph g;
    final Spec spec;
    private final List<MemorySegment> owned = new ArrayList<>();
    private final long[] uids;
    final List<MemorySegment> plans = new ArrayList<>();
    final List<Long> workspaces = new ArrayList<>();
    /** Where each plan came from: heuristics mode and position in its list (what {@link ConvChoiceStore} remembers). */
    final List<Origin> origins = new ArrayList<>();
    private MemorySegment graph;

    /** An engine configuration's place in cuDNN's heuristics: the same graph, library and device list them in the same order. */
    record Origin(int mode, int position) {}
    private final Map<Pointers, MemorySegment> packs = new HashMap<>();

    private ConvGraph(CudnnGraph g, Spec spec, long[] uids) {
        this.g = g;
        this.spec = spec;
        this.uids = uids;
    }

    /**
     * Builds the graph and finalises up to {@code maxPlans} execution plans from the heuristics
     * (mode A, then the fallback list) whose workspace fits {@code maxWorkspace}. Null when cuDNN
     * has no plan for it (the caller then uses the legacy API).
     */
    static ConvGraph build(CudnnGraph g, MemorySegment handle, Spec s, long maxWorkspace, int maxPlans) {
        ConvGraph cg = describe(g, handle, s);
        try {
            // in fp32 the heuristics rank TF32 engines first, which exact() refuses: look further down
            int count = s.dataType() == Cudnn.DATA_FLOAT ? 8 * maxPlans : maxPlans;
            for (int mode : new int[] {CudnnGraph.HEUR_A, CudnnGraph.HEUR_FALLBACK}) cg.addPlans(handle, mode, count, -1, maxPlans, maxWorkspace);
        } catch (RuntimeException e) {
            cg.close();
            throw e;
        }
        return cg.orNull();
    }

    /**
     * The graph with one plan, from the first engine configuration (heuristics A, then the fallback
     * list) whose engine needs no kernel compiled at run time; null when none has one. On a machine
     * whose driver JIT cache is empty, finalising runtime-compiled plans took most of a cold first
     * tile (H200: 6.5 s against 0.9 s warm), so an untimed start may prefer these.
     */
    static ConvGraph buildPrecompiled(CudnnGraph g, MemorySegment handle, Spec s, long maxWorkspace) {
        ConvGraph cg = describe(g, handle, s);
        try {
            int count = s.dataType() == Cudnn.DATA_FLOAT ? 64 : 16;
            for (int mode : new int[] {CudnnGraph.HEUR_A, CudnnGraph.HEUR_FALLBACK}) {
                List<MemorySegment> cfgs = g.engineConfigs(cg.graph, mode, count);
                try {
                    for (int i = 0; i < cfgs.size() && cg.plans.isEmpty(); i++) {
                        if (cg.exact(cfgs.get(i)) && precompiled(g, cfgs.get(i))) cg.addPlan(handle, cfgs.get(i), maxWorkspace, new Origin(mode, i));
                    }
                } finally {
                    for (MemorySegment c : cfgs) g.destroy(c);
                }
            }
        } catch (RuntimeException e) {
            cg.close();
            throw e;
        }
        return cg.orNull();
    }

    /** Whether an engine runs a kernel that ships compiled (no behaviour note of run-time compilation; unknown counts as compiled). */
    private static boolean precompiled(CudnnGraph g, MemorySegment cfg) {
        try {
            for (int note : g.behaviorNotes(cfg)) if (note == CudnnGraph.BEHAVIOR_RUNTIME_COMPILATION) return false;
            return true;
        } catch (dev.headroom.cuda.CudaException e) {
            return true;
        }
    }

    /**
     * Builds the graph with the one plan at {@code origin} (a choice remembered from an earlier
     * run), finalising only that plan. Null when the heuristics no longer list it there or its
     * workspace no longer fits (the caller then times the candidates again).
     */
    static ConvGraph rebuild(CudnnGraph g, MemorySegment handle, Spec s, long maxWorkspace, Origin origin) {
        ConvGraph cg = describe(g, handle, s);
        try {
            cg.addPlans(handle, origin.mode(), origin.position() + 1, origin.position(), 1, maxWorkspace);
        } catch (RuntimeException e) {
            cg.close();
            throw e;
        }
        return cg.orNull();
    }

    /**
     * Finalises plans from the first {@code count} engine configurations the heuristics of
     * {@code mode} list (only position {@code only}, or all when it is -1) until this graph has
     * {@code maxPlans}.
     */
    private void addPlans(MemorySegment handle, int mode, int count, int only, int maxPlans, long maxWorkspace) {
        List<MemorySegment> cfgs = g.engineConfigs(graph, mode, count);
        try {
            for (int i = 0; i < cfgs.size() && plans.size() < maxPlans; i++) {
                if ((only < 0 || i == only) && exact(cfgs.get(i))) addPlan(handle, cfgs.get(i), maxWorkspace, new Origin(mode, i));
            }
        } finally {
            for (MemorySegment c : cfgs) g.destroy(c);
        }
    }

    /**
     * Whether an engine keeps this graph's numbers: in fp32, one that rounds inputs to TF32 on
     * tensor cores does not (10-bit mantissas; fp32 must stay within 1 LSB of fp32 references), so
     * fp32 graphs run on the engines without tensor cores. 16-bit graphs take any engine.
     */
    private boolean exact(MemorySegment cfg) {
        if (spec.dataType() != Cudnn.DATA_FLOAT) return true;
        for (int note : g.numericalNotes(cfg)) {
            if (note == CudnnGraph.NOTE_TENSOR_CORE || note == CudnnGraph.NOTE_DOWN_CONVERT_INPUTS || note == CudnnGraph.NOTE_REDUCED_PRECISION_REDUCTION) {
                return false;
            }
        }
        return true;
    }

    private ConvGraph orNull() {
        if (!plans.isEmpty()) return this;
        close();
        return null;
    }

    /** Finalises the plan for one engine configuration if cuDNN supports it and its workspace fits. */
    private void addPlan(MemorySegment handle, MemorySegment cfg, long maxWorkspace, Origin origin) {
        MemorySegment plan = g.plan(handle, cfg);
        if (plan == null) return;
        long ws = g.workspaceSize(plan);
        if (ws > maxWorkspace) {
            g.destroy(plan);
            return;
        }
        plans.add(plan);
        workspaces.add(ws);
        origins.add(origin);
    }

    /** The tensors a call of {@code s} binds, by uid. */
    private static long[] uids(Spec s) {
        List<Long> uids = new ArrayList<>(List.of(X, W, Y));
        if (s.fused() && s.bias()) uids.add(B);
        if (s.fused() && s.residual() && s.rscale() != 1f) uids.add(S);
        if (s.fused() && s.residual()) uids.add(R);
        if (s.fused() && s.outer() && s.oscale() != 1f) uids.add(S2);
        if (s.fused() && s.outer()) uids.add(R2);
        return uids.stream().mapToLong(Long::longValue).toArray();
    }

    /**
     * The graph of {@code s} with one plan made from a serialised plan of the same spec and origin
     * ({@link #json}, {@link SerializedPlans}): no operation graph, heuristics or kernel compilation;
     * null where cuDNN refuses the bytes. The caller checks its workspace ({@link #workspaces}).
     */
    static ConvGraph fromJson(CudnnGraph g, MemorySegment handle, Spec s, Origin origin, byte[] json) {
        MemorySegment plan = g.planFromJson(handle, json);
        if (plan == null) return null;
        ConvGraph cg = new ConvGraph(g, s, uids(s));
        cg.plans.add(plan);
        try {
            cg.workspaces.add(g.workspaceSize(plan));
        } catch (RuntimeException e) {
            cg.close();
            throw e;
        }
        cg.origins.add(origin);
        return cg;
    }

    /** Plan 0 serialised, or null where cuDNN does not serialise its engine (only runtime-compiled ones, as of cuDNN 9). */
    byte[] json() {
        return plans.isEmpty() ? null : g.planJson(plans.getFirst());
    }

    /** The operation graph of {@code s}, with no plans yet. */
    private static ConvGraph describe(CudnnGraph g, MemorySegment handle, Spec s) {
        ConvGraph cg = new ConvGraph(g, s, uids(s));
        try {
            int fp32 = Cudnn.DATA_FLOAT;
            long[] yDims = {s.n(), s.cout(), s.h(), s.w()}, dense = nhwc(s.h(), s.w(), s.cout());
            MemorySegment x = cg.own(g.tensor(X, s.dataType(), new long[] {s.n(), s.cin(), s.h(), s.w()}, nhwc(s.h(), s.w(), s.xStride()), false));
            // w is KRSC: (Cout, kh, kw, Cin)
            MemorySegment w = cg.own(g.tensor(W, s.dataType(), new long[] {s.cout(), s.cin(), s.kh(), s.kw()},
                    new long[] {(long) s.kh() * s.kw() * s.cin(), 1, (long) s.kw() * s.cin(), s.cin()}, false));
            MemorySegment y = cg.own(g.tensor(Y, s.dataType(), yDims, s.fused() ? nhwc(s.h(), s.w(), s.yStride()) : dense, false));
            MemorySegment conv = cg.own(g.convolution(s.padH(), s.padW()));
            // the epilogue's steps: an operator and its second operand (null for unary ones)
            List<MemorySegment[]> steps = new ArrayList<>();
            if (s.fused() && s.bias()) {
                steps.add(new MemorySegment[] {cg.own(g.pointwise(CudnnGraph.PW_ADD, 0)),
                        cg.own(g.tensor(B, fp32, new long[] {1, s.cout(), 1, 1}, new long[] {s.cout(), 1, s.cout(), s.cout()}, false))});
            }
            if (s.fused() && (s.act() == Act.Kind.RELU || s.act() == Act.Kind.LEAKY_RELU)) {
                steps.add(new MemorySegment[] {cg.own(g.pointwise(CudnnGraph.PW_RELU_FWD, s.act() == Act.Kind.RELU ? 0 : s.leak())), null});
            }
            if (s.fused() && s.residual()) cg.scaledSum(steps, S, s.rscale(), R, yDims, s.rStride());
            if (s.fused() && s.outer()) cg.scaledSum(steps, S2, s.oscale(), R2, yDims, s.oStride());
            List<MemorySegment> ops = new ArrayList<>();
            long virtualUid = 100;
            MemorySegment acc = steps.isEmpty() ? y : cg.own(g.tensor(++virtualUid, fp32, yDims, dense, true));
            ops.add(cg.own(g.convForward(conv, x, w, acc)));
            for (int i = 0; i < steps.size(); i++) {
                MemorySegment out = i == steps.size() - 1 ? y : cg.own(g.tensor(++virtualUid, fp32, yDims, dense, true));
                ops.add(cg.own(g.pointwiseOp(steps.get(i)[0], acc, steps.get(i)[1], out)));
                acc = out;
            }
            cg.graph = cg.own(g.operationGraph(handle, ops));
        } catch (RuntimeException e) {
            cg.close();
            throw e;
        }
        return cg;
    }

    /** Steps "times scale" (left out when it is 1) then "plus the residual r", an NHWC view of {@code stride} channels a pixel. */
    private void scaledSum(List<MemorySegment[]> steps, long scaleUid, float scale, long residualUid, long[] dims, int stride) {
        if (scale != 1f) {
            steps.add(new MemorySegment[] {own(g.pointwise(CudnnGraph.PW_MUL, 0)),
                    own(g.tensor(scaleUid, Cudnn.DATA_FLOAT, new long[] {1, 1, 1, 1}, new long[] {1, 1, 1, 1}, false))});
        }
        steps.add(new MemorySegment[] {own(g.pointwise(CudnnGraph.PW_ADD, 0)),
                own(g.tensor(residualUid, spec.dataType(), dims, nhwc((int) dims[2], (int) dims[3], stride), false))});
    }

    private MemorySegment own(MemorySegment d) {
        owned.add(d);
        return d;
    }

    /** NHWC element strides in cuDNN's (N, C, H, W) order for a view whose pixels are {@code pixelStride} elements apart. */
    private static long[] nhwc(int h, int w, int pixelStride) {
        return new long[] {(long) h * w * pixelStride, 1, (long) w * pixelStride, pixelStride};
    }

    /** Runs plan {@code index} on these pointers (variant packs are cached: the arena gives the same addresses tile after tile). */
    void execute(MemorySegment handle, int index, Pointers p) {
        MemorySegment pack = packs.get(p);
        if (pack == null) {
            if (packs.size() >= MAX_VARIANT_PACKS) {
                for (MemorySegment v : packs.values()) g.destroy(v);
                packs.clear();
            }
            long[] ptrs = new long[uids.length];
            for (int i = 0; i < uids.length; i++) {
                ptrs[i] = switch ((int) uids[i]) {
                    case (int) X -> p.x();
                    case (int) W -> p.w();
                    case (int) B -> p.b();
                    case (int) S -> p.s();
                    case (int) R -> p.r();
                    case (int) S2 -> p.s2();
                    case (int) R2 -> p.r2();
                    default -> p.y();
                };
            }
            pack = g.variantPack(uids, ptrs, p.workspace());
            packs.put(p, pack);
        }
        g.execute(handle, plans.get(index), pack);
    }

    /** Keeps plan {@code index} only (it becomes plan 0). */
    void keep(int index) {
        MemorySegment chosen = plans.get(index);
        long ws = workspaces.get(index);
        Origin origin = origins.get(index);
        for (int i = 0; i < plans.size(); i++) if (i != index) g.destroy(plans.get(i));
        plans.clear();
        workspaces.clear();
        origins.clear();
        plans.add(chosen);
        workspaces.add(ws);
        origins.add(origin);
        for (MemorySegment v : packs.values()) g.destroy(v);
        packs.clear();
    }

    @Override
    public void close() {
        for (MemorySegment v : packs.values()) g.destroy(v);
        packs.clear();
        for (MemorySegment p : plans) g.destroy(p);
        plans.clear();
        origins.clear();
        for (int i = owned.size() - 1; i >= 0; i--) g.destroy(owned.get(i));
        owned.clear();
    }
}
