package dev.headroom.runtime.gpu;

import dev.headroom.core.Precision;
import dev.headroom.core.graph.Op;
import dev.headroom.core.graph.Padding;
import dev.headroom.cuda.CudaException;
import dev.headroom.cuda.Cudnn;
import dev.headroom.cuda.CudnnGraph;
import dev.headroom.cuda.Driver;
import dev.headroom.runtime.DeviceBuffer;
import dev.headroom.runtime.Ops;
import dev.headroom.runtime.Tensor;
import dev.headroom.runtime.gpu.ConvCalls.Call;
import dev.headroom.runtime.gpu.ConvCalls.Key;
import dev.headroom.runtime.memory.DeviceMemory;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * How {@link CudaOps} runs a convolution. On its first call each shape (with its strides and
 * epilogue) times the ways it can run and keeps the fastest ({@link Strategy}), and remembers the
 * choice on disk ({@link ConvChoiceStore}) so later processes on the same device, driver, cuDNN
 * and precision skip the timing:
 * <ul>
 * <li>FUSED: one cuDNN graph for convolution + bias + activation + scaled residuals, reading and
 *     writing channel slices in place ({@link ConvGraph});
 * <li>GRAPH: a cuDNN graph for the convolution alone, then headroom's epilogue kernel;
 * <li>GEMM (1x1 only): one cuBLAS matrix product straight between the channel slices (their
 *     pixel strides are the leading dimensions), then the epilogue kernel in place;
 * <li>LEGACY: cuDNN's legacy API on a packed input, then the epilogue kernel.
 * </ul>
 * fp32 stays true fp32: LEGACY with FMA math, GEMM with fp32 compute, and graphs only on engines
 * without tensor cores (which would round inputs to TF32; {@link ConvGraph}), with LEGACY
 * always among the candidates. On the H100 every RRDBNet fp16 shape chose the fused graph,
 * and the forward pass of a 256 tile fell from 38 ms (legacy, same run) to 10.9 ms.
 *
 * <p>All device memory (the workspace, temporaries, cuDNN's algorithm search, cuBLAS's scratch)
 * comes from the device's {@link DeviceMemory}. One per session ({@link CudaOps}), on its stream and
 * its thread; the remembered choices are shared by every session of every open device of the kind,
 * and each shape is timed by one of them only ({@link ConvChoiceStore#turn}), so all run one choice.
 */
final class Convolutions implements AutoCloseable {
    enum Strategy { FUSED, GRAPH, GEMM, LEGACY }

    /**
     * What a remembered choice was chosen among, part of the store's fingerprint: a choice made
     * among other candidates (before GEMM, or before fp32 took graphs) is made again.
     */
    private static final String CANDIDATES = java.util.Arrays.toString(Strategy.values()) + " fp32-graphs-without-tf32";

    /** Plans timed per graph; cuDNN's heuristics rank them, the clock decides. */
    private static final int MAX_PLANS = 8;

    private final CudaOps ops;
    private final Driver cu;
    private final Cudnn dnn = Cudnn.get();
    private final MemorySegment handle;
    private final MemorySegment stream;
    private final DeviceMemory alloc;
    private final Precision precision;
    private final boolean graphApi = !"0".equals(System.getenv("HEADROOM_CUDNN_GRAPH"));
    /** Shapes on the legacy API; made in the constructor, after {@link #remembered}. */
    private final LegacyPlans plans;
    private final Map<Key, Choice> choices = new HashMap<>();
    /** Choices from earlier processes on this kind of device, libraries and precision. */
    private final ConvChoiceStore remembered;
    private int recalled;
    private final boolean timeEverything = ConvStart.timeEverything();
    /** Calls of each shape that still runs on a heuristic choice. */
    private final Map<Key, Integer> calls = new HashMap<>();
    private long firstCall, tuningNanos;
    /** Time spent timing shapes met for the first time before their first run (full timing, or nothing remembered and no heuristic). */
    private long timingNanos;
    /**
     * Time spent finalising plans of untimed or remembered choices: on a machine whose driver JIT
     * cache is empty, cuDNN compiles kernels there for seconds (H200: a first 256 tile 6.5 s cold,
     * 0.9 s warm), which is not the job running and must not license timing in its first pass.
     */
    private long buildNanos;
    /** Shapes whose plans were built untimed or recalled ({@link #buildNanos}), and the slowest one's time. */
    private int builds;
    private long buildMaxNanos;
    /** Shapes timed by this session, and shapes moved to a choice another session timed ({@link #settle}). */
    private int timedHere, timedAdopted;
    /** What the last shape's timing took: the guess for the next one's (a quarter second before any). */
    private long lastTuning = 250_000_000L;
    /** Graphs, plans and GEMMs refused, with the reason (`bench --json` lists them as graph_failures). */
    private final List<String> failures = new ArrayList<>();
    private DeviceBuffer workspace;
    /** The largest workspace plans were built for: after {@link #releaseWorkspace} it comes back at least this large. */
    private long workspaceFloor;
    /** Runs a call the chosen way; owns the cuBLAS handle and the residual scales. */
    private final ConvRunner runner;
    /** Set by tests to run every convolution one way; null lets the clock choose. */
    private Strategy forced;

    /**
     * How a shape runs; {@code heuristic}: cuDNN's first offer, not timed yet (micros is NaN);
     * {@code lent}: the graph is the device's ({@link PlanService}), given back instead of closed;
     * {@code precompiled}: an engine that ships compiled, until the first choice is taken up.
     */
    private record Choice(Strategy strategy, ConvGraph graph, double micros, boolean heuristic, boolean lent, boolean precompiled) {
        Choice(Strategy strategy, ConvGraph graph, double micros) {
            this(strategy, graph, micros, false, false, false);
        }

        Choice(Strategy strategy, ConvGraph graph, double micros, boolean heuristic) {
            this(strategy, graph, micros, heuristic, false, false);
        }
    }

    /** How an untimed shape starts ({@link ConvStart#startMode}). */
    private final String start = ConvStart.startMode();
    private final boolean precompiledStart = "precompiled".equals(start) || "background".equals(start);

    /** The device's plans, handles and plan workers, shared with its other sessions; null without cuDNN graphs or with HEADROOM_CONV_SHARED_PLANS=0. */
    private final PlanService<ConvGraph> shared;
    private final CudaDevice device;
    /** Whether the background start runs ({@link ConvStart#startMode}). */
    private final boolean background;
    /** Shapes on a precompiled start whose first choice is being built in the background, and that build. */
    private final Map<Key, CudnnPlans.FirstKey> backgroundSpecs = new HashMap<>();
    private final Map<Key, java.util.concurrent.CompletableFuture<Object>> backgroundBuilds = new HashMap<>();
    /** Shapes moved from a precompiled start to the choice built in the background. */
    private int adopted;
    /** Calls run on a precompiled start; first choices taken at once within the grace; graphs lent by the device. */
    private long precompiledCalls;
    private int graceHits, lentGraphs;
    /** Time this session's thread waited for first-choice builds on the device's workers. */
    private long waitNanos;
    /**
     * Whether cuDNN's untimed first choices are remembered on disk (micros NaN), so a later process
     * starts such a shape on it at once (HEADROOM_CONV_REMEMBER_FIRST=0 turns it off, for comparison).
     */
    private final boolean rememberFirst = !"0".equals(System.getenv("HEADROOM_CONV_REMEMBER_FIRST"));

    /** A heuristic choice is timed once its shape has run this many times (it repeats: timing can pay back). */
    static final int REPEATS = 3;
    /**
     * Timing is allowed while it has taken at most this share of the time since the first convolution
     * (the property headroom.conv-tuning-share overrides it: tests that must see timing at once).
     */
    static final double TUNING_SHARE = 0.05;
    private final double tuningShare = Double.parseDouble(System.getProperty("headroom.conv-tuning-share", String.valueOf(TUNING_SHARE)));

    Convolutions(CudaOps ops, Driver cu, MemorySegment stream, DeviceMemory alloc, Precision precision, CudaDevice device) {
        this.ops = ops;
        this.cu = cu;
        this.stream = stream;
        this.alloc = alloc;
        this.precision = precision;
        dev.headroom.runtime.Startup.mark("cudnn_loaded");
        handle = dnn.createHandle(stream);
        dev.headroom.runtime.Startup.mark("cudnn_handle");
        remembered = device.choiceStore(dev.headroom.runtime.CacheDir.root().resolve("conv-choices"),
                device.description() + " cudnn " + dnn.version() + " " + precision + " " + CANDIDATES + (graphApi ? "" : " legacy-only") + (ConvRunner.GEMM_API ? "" : " no-gemm"));
        plans = new LegacyPlans(dnn, handle, precision, remembered);
        runner = new ConvRunner(ops, dnn, handle, stream, alloc, precision, plans, failures);
        this.device = device;
        shared = graphApi && !"0".equals(System.getenv("HEADROOM_CONV_SHARED_PLANS")) ? device.plans() : null;
        background = "background".equals(start) && shared != null;
    }

    /** Bytes kept between calls: the workspace and the residual scales' device copies. */
    long heldBytes() {
        return (workspace == null ? 0 : workspace.bytes()) + runner.scalarBytes();
    }

    /** Shapes by strategy; those still on cuDNN's untimed heuristic choice as e.g. "FUSED (heuristic)". */
    Map<String, Integer> strategies() {
        Map<String, Integer> n = new java.util.TreeMap<>();
        for (Choice c : choices.values()) n.merge(c.strategy().name() + (c.heuristic() ? " (heuristic)" : ""), 1, Integer::sum);
        return n;
    }

    /** Nanoseconds spent timing heuristic choices' alternatives between runs ({@link #REPEATS}). */
    long tuningNanos() {
        return tuningNanos;
    }

    /** Nanoseconds spent timing shapes before their first run ({@link #timingNanos}). */
    long timingNanos() {
        return timingNanos;
    }

    /** Bytes of the kept workspace (0 when none is held now). */
    long workspaceBytes() {
        return workspace == null ? 0 : workspace.bytes();
    }

    /**
     * The most workspace any chosen cuDNN plan uses (cuBLAS's GEMMs may use the rest): what the
     * workspace could shrink to once every shape is chosen; the planner counts the whole cap.
     */
    long workspaceUsed() {
        long used = 0;
        for (Choice c : choices.values()) if (c.graph() != null && !c.graph().workspaces.isEmpty()) used = Math.max(used, c.graph().workspaces.getFirst());
        return used;
    }

    /** Nanoseconds spent finalising the plans of untimed and remembered choices ({@link #buildNanos}). */
    long buildNanos() {
        return buildNanos;
    }

    /** Untimed or recalled shapes built, and the slowest build in nanoseconds ({@link #buildNanos}). */
    long[] builds() {
        return new long[] {builds, buildMaxNanos};
    }

    int recalled() {
        return recalled;
    }

    List<String> failures() {
        return List.copyOf(failures);
    }

    /** How this session's convolutions started: calls on precompiled engines, grace hits, graphs lent by the device, waits for its workers. */
    Map<String, Object> startStats() {
        Map<String, Object> m = new java.util.LinkedHashMap<>();
        m.put("conv_start", start);
        m.put("conv_precompiled_calls", precompiledCalls);
        m.put("conv_grace_hits", graceHits);
        m.put("conv_graphs_lent", lentGraphs);
        m.put("conv_first_choice_wait_ms", Math.round(waitNanos / 1e4) / 100.0);
        return m;
    }

    /** Shapes that started on a precompiled engine and moved to the choice built in the background. */
    int adopted() {
        return adopted;
    }

    /** Runs every later convolution with {@code strategy}, or lets timing choose again (null). */
    void force(String strategy) {
        ops.invalidateRecordings("force a convolution strategy");
        for (Choice c : choices.values()) discard(c);
        choices.clear();
        calls.clear();
        forced = strategy == null ? null : Strategy.valueOf(strategy);
    }

    /** out = conv(in) with the weights' epilogue, residual and outer residual (either may be null). */
    void run(Tensor in, CudaConvWeights weights, Tensor residual, Tensor outer, Tensor out) {
        Call call = new Call(weights, in, residual, outer, out);
        ensureWorkspace(CudaMemoryModel.workspaceCap(in.bytes()));
        Key key = call.key();
        if (firstCall == 0) {
            firstCall = System.nanoTime();
            dev.headroom.runtime.Startup.mark("first_convolution");
        }
        Choice choice = choices.get(key);
        if (choice == null) {
            long t0 = System.nanoTime();
            choice = recall(call, key);
            if (choice == null && forced == null && !timeEverything) choice = heuristic(call, key);
            long built = System.nanoTime() - t0;
            buildNanos += built;
            buildMaxNanos = Math.max(buildMaxNanos, built);
            builds++;
            if (choice == null) {
                long t1 = System.nanoTime();
                choice = forced == null ? timeOnce(call, key) : choose(call);
                timingNanos += System.nanoTime() - t1;
            }
            choices.put(key, choice);
        } else if (choice.precompiled() && !ops.capturing() && backgroundBuilds.containsKey(key) && backgroundBuilds.get(key).isDone()) {
            choice = adopt(key, choice);
        } else if (choice.heuristic() && !ops.capturing() && calls.merge(key, 1, Integer::sum) >= REPEATS) {
            choice = settle(call, key, choice);
        }
        if (choice.precompiled()) precompiledCalls++;
        runner.run(choice.strategy(), choice.graph(), 0, call);
    }

    /** Gives a lent graph back to the device, closes one of this session's own. */
    private void discard(Choice c) {
        if (c.graph() == null) return;
        if (c.lent()) shared.giveBack(new CudnnPlans.PoolKey(c.graph().spec, c.graph().origins.getFirst()), c.graph());
        else c.graph().close();
    }

    /** The fused (null where it cannot fuse) and unfused specs of a call: what its first-choice build is shared by. */
    private CudnnPlans.FirstKey firstKey(Call c) {
        ConvGraph.Spec fused = spec(c, true);
        return new CudnnPlans.FirstKey(fused.fusable() ? fused : null, spec(c, false));
    }

    /** Starts (or joins, when another session started it) the device's build of this call's first choice. */
    private java.util.concurrent.CompletableFuture<Object> firstChoiceBuild(CudnnPlans.FirstKey k) {
        return shared.background(k, CudnnPlans.firstChoice(device, shared, k, workspace.bytes()));
    }

    /** The first choice's build result once done (null when it failed to run at all). */
    private static CudnnPlans.Built built(java.util.concurrent.CompletableFuture<Object> f) {
        try {
            return (CudnnPlans.Built) f.join();
        } catch (java.util.concurrent.CompletionException | java.util.concurrent.CancellationException e) {
            return null;
        }
    }

    /** The graph of a finished first-choice build, lent to this session as an untimed choice (remembered untimed); null where it found none. */
    private Choice lendFirst(Key key, CudnnPlans.FirstKey k, CudnnPlans.Built b) {
        if (b == null) {
            failures.add("first choice " + key + ": its build did not run");
            return null;
        }
        failures.addAll(b.failures());
        if (b.strategy() == null || workspace == null) return null;
        ConvGraph.Spec spec = b.strategy() == Strategy.FUSED ? k.fused() : k.unfused();
        ConvGraph cg = CudnnPlans.lendOrBuild(device, shared, spec, b.origin(), workspace.bytes());
        if (cg == null) return null;
        try {
            if (spec.fused() && !ops.capturing()) {
                // a precompiled start that ran unfused uploaded no residual scale; a recorded pass could not upload it
                // (H200: "cannot upload 1 values while recording a CUDA graph", and the pass ran eager)
                if (spec.residual() && spec.rscale() != 1f) runner.scalar(spec.rscale());
                if (spec.outer() && spec.oscale() != 1f) runner.scalar(spec.oscale());
            }
            if (rememberFirst && forced == null && remembered.get(key.toString()) == null) {
                remembered.put(key.toString(), new ConvChoiceStore.Entry(b.strategy().name(), b.origin().mode(), b.origin().position(), Double.NaN));
            }
        } catch (RuntimeException | Error e) {
            shared.giveBack(new CudnnPlans.PoolKey(spec, b.origin()), cg);   // not lent to a choice that will never hold it
            throw e;
        }
        lentGraphs++;
        return new Choice(b.strategy(), cg, Double.NaN, true, true, false);
    }

    /**
     * cuDNN's first offer for this call, untimed: a fused graph, else the convolution graph with
     * the epilogue kernel, each finalised with one plan (the heuristics' first that builds); a 1x1
     * convolution that no graph takes goes to cuBLAS. Null where none of these runs it (the legacy
     * API then has its own search). On the H100 every RRDBNet fp16 shape's timed winner was a fused
     * graph, so the fused graph's first plan is the guess that costs least to be wrong about.
     */
    private Choice heuristic(Call c, Key key) {
        if (graphApi && c.aligned() && precompiledStart) {
            CudnnPlans.FirstKey k = firstKey(c);
            java.util.concurrent.CompletableFuture<Object> build = background ? firstChoiceBuild(k) : null;
            // another session of the device built it already, or a warm JIT cache builds it well within the grace: no slow start then
            if (build != null && finishesWithin(build, ConvStart.GRACE_NANOS)) {
                Choice first = lendFirst(key, k, built(build));
                if (first != null) {
                    graceHits++;
                    return first;
                }
            }
            // an engine that ships compiled, fused or not, before any that compiles its kernel now
            for (Strategy st : new Strategy[] {Strategy.FUSED, Strategy.GRAPH}) {
                ConvGraph.Spec spec = spec(c, st == Strategy.FUSED);
                if (st == Strategy.FUSED && !spec.fusable()) continue;
                try {
                    ConvGraph cg = ConvGraph.buildPrecompiled(CudnnGraph.get(), handle, spec, workspace.bytes());
                    if (cg != null) {
                        if (build != null) {
                            backgroundSpecs.put(key, k);
                            backgroundBuilds.put(key, build);
                        }
                        return new Choice(st, cg, Double.NaN, true, false, true);
                    }
                } catch (CudaException e) {
                    failures.add(st + " precompiled heuristic " + c.key() + ": " + e.getMessage());
                }
            }
        }
        if (graphApi && c.aligned() && shared != null) {
            // cuDNN's first choice, built on a worker of the device (or by another session already), lent to this one
            CudnnPlans.FirstKey k = firstKey(c);
            long t0 = System.nanoTime();
            CudnnPlans.Built b = built(firstChoiceBuild(k));
            waitNanos += System.nanoTime() - t0;
            Choice first = lendFirst(key, k, b);
            if (first != null) return first;
        } else if (graphApi && c.aligned()) {
            for (Strategy st : new Strategy[] {Strategy.FUSED, Strategy.GRAPH}) {
                ConvGraph.Spec spec = spec(c, st == Strategy.FUSED);
                if (st == Strategy.FUSED && !spec.fusable()) continue;
                try {
                    ConvGraph cg = ConvGraph.build(CudnnGraph.get(), handle, spec, workspace.bytes(), 1);
                    if (cg != null) return new Choice(st, cg, Double.NaN, true);
                } catch (CudaException e) {
                    failures.add(st + " heuristic " + c.key() + ": " + e.getMessage());
                }
            }
        }
        if (c.pointwise() && runner.gemmAvailable()) return new Choice(Strategy.GEMM, null, Double.NaN, true);
        return null;
    }

    /**
     * Whether a heuristic choice may be timed now: never while a forward pass is being recorded
     * (timing waits for the device, which a capture forbids), and only while timing so far plus the
     * next shape's (guessed from the last) stays within {@link #TUNING_SHARE} of the time since the
     * first convolution, less the time spent building plans ({@link #buildNanos}), so a job is
     * slowed by a few percent at most and its first seconds not at all; what is not timed in this
     * process is timed in a later one.
     */
    private boolean mayTune() {
        return !ops.capturing() && tuningNanos + lastTuning <= tuningShare * (System.nanoTime() - firstCall - buildNanos);
    }

    /**
     * Moves {@code key} from its precompiled start to the choice built in the background: the graph
     * the device's worker finalised, lent to this session (no second finalisation on this thread).
     * Waits for the build if it is still running. Keeps the start where the build found nothing.
     */
    private Choice adopt(Key key, Choice current) {
        long t0 = System.nanoTime();
        CudnnPlans.FirstKey k = backgroundSpecs.remove(key);
        CudnnPlans.Built b = built(backgroundBuilds.remove(key));
        Choice next;
        try {
            next = lendFirst(key, k, b);
        } catch (CudaException e) {
            failures.add("adopt " + key + ": " + e.getMessage());
            next = null;
        }
        buildNanos += System.nanoTime() - t0;
        if (next == null) return current;   // the precompiled start stays until the shape is timed
        ops.invalidateRecordings("replace a precompiled start with cuDNN's first choice, built in the background");
        discard(current);
        choices.put(key, next);
        adopted++;
        return next;
    }

    /** Whether {@code f} completes within {@code nanos}. */
    private static boolean finishesWithin(java.util.concurrent.CompletableFuture<Object> f, long nanos) {
        try {
            f.get(nanos, java.util.concurrent.TimeUnit.NANOSECONDS);
            return true;
        } catch (java.util.concurrent.TimeoutException e) {
            return false;
        } catch (java.util.concurrent.ExecutionException | java.util.concurrent.CancellationException e) {
            return true;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /**
     * Before a pass is recorded: every shape still on a precompiled start waits for its background
     * build and takes it up, so the recording (replayed for the rest of the job) runs cuDNN's first
     * choices. A no-op unless HEADROOM_CONV_START=background.
     */
    void settleBackground() {
        if (backgroundSpecs.isEmpty() || workspace == null) return;
        for (Key k : List.copyOf(backgroundSpecs.keySet())) {
            Choice c = choices.get(k);
            if (c != null && c.precompiled()) {
                adopt(k, c);
            } else {
                backgroundSpecs.remove(k);
                backgroundBuilds.remove(k);
            }
        }
    }

    /**
     * A shape that repeated on an untimed choice takes the device kind's one timed choice
     * ({@link ConvChoiceStore#turn}): the remembered one where any session has timed it, else this
     * session times it when no other is doing so and its budget allows ({@link #mayTune}), else it
     * stays untimed for now. Where the remembered way does not build here, this session stops asking
     * for that shape (it runs on; a later process tries again).
     */
    private Choice settle(Call c, Key key, Choice current) {
        String k = key.toString();
        switch (remembered.turn(k, mayTune())) {
            case ADOPT -> {
                Choice next = recall(c, key);
                if (next == null || next.heuristic()) {
                    if (next != null) discard(next);
                    calls.put(key, Integer.MIN_VALUE);   // never REPEATS again in this session
                    return current;
                }
                ops.invalidateRecordings("take the convolution choice another session timed");
                discard(current);
                choices.put(key, next);
                calls.remove(key);
                timedAdopted++;
                return next;
            }
            case TIME -> {
                try {
                    return tune(c, key, current);
                } finally {
                    remembered.timed(k);
                }
            }
            default -> {
                return current;
            }
        }
    }

    /**
     * A shape met for the first time that must be timed before it runs (full timing, or no untimed
     * choice): timed here and remembered, or, when another session of the device kind is timing it
     * now, waited for and taken from it, so that sessions meeting a shape together run one choice.
     */
    private Choice timeOnce(Call c, Key key) {
        String k = key.toString();
        while (true) {
            switch (remembered.turn(k, true)) {
                case ADOPT -> {
                    Choice r = recall(c, key);
                    if (r != null && !r.heuristic()) {
                        timedAdopted++;
                        return r;
                    }
                    if (r != null) discard(r);
                    return choose(c);   // the remembered way does not build here: this session's own
                }
                case TIME -> {
                    try {
                        Choice mine = choose(c);
                        remember(key, mine);
                        timedHere++;
                        return mine;
                    } finally {
                        remembered.timed(k);
                    }
                }
                default -> {
                    try {
                        Thread.sleep(1);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        throw new IllegalStateException("interrupted while another session timed convolution " + k, e);
                    }
                }
            }
        }
    }

    /** Shapes this session timed ({@link #tune}), and shapes it moved to a choice another session timed ({@link #settle}). */
    int[] timedShapes() {
        return new int[] {timedHere, timedAdopted};
    }

    /** Times every candidate for a shape that runs on a heuristic choice, keeps and remembers the fastest. */
    private Choice tune(Call c, Key key, Choice heuristic) {
        long t0 = System.nanoTime();
        Choice timed = choose(c);
        ops.invalidateRecordings("replace a convolution's heuristic choice with the timed one");
        discard(heuristic);
        remember(key, timed);
        choices.put(key, timed);
        calls.remove(key);
        lastTuning = System.nanoTime() - t0;
        tuningNanos += lastTuning;
        timedHere++;
        return timed;
    }

    /**
     * Times the strategies this call can use (each plan of each graph, up to 3 runs after a
     * warm-up, host clock around a synchronised batch; a candidate whose first timed run is 1.5x
     * the best so far is dropped at once) and keeps the fastest. In 16 bits the legacy API is only
     * the fallback when nothing else runs: its algorithm search runs every algorithm at full size.
     * With every candidate timed in full, the first 1376x1376 tile of a 4096x4096 RRDBNet job took
     * about 45 s of the job's 88 s on the H100; and the fused graph won every RRDBNet shape
     * measured there (35 of 35 at 256 and 512 tiles).
     */
    private Choice choose(Call c) {
        boolean graphs = graphApi && c.aligned();
        Choice best = new Choice(Strategy.LEGACY, null, Double.MAX_VALUE);
        try {
            if (graphs) {
                for (Strategy st : new Strategy[] {Strategy.FUSED, Strategy.GRAPH}) {
                    if (forced != null && st != forced) continue;
                    best = tryGraph(st, c, best);
                }
            }
            if ((forced == null || forced == Strategy.GEMM) && c.pointwise() && runner.gemmAvailable()) {
                try {
                    double t = time(() -> runner.run(Strategy.GEMM, null, 0, c), best.micros());
                    if (t < best.micros()) {
                        if (best.graph() != null) best.graph().close();
                        best = new Choice(Strategy.GEMM, null, t);
                    }
                } catch (CudaException e) {
                    failures.add("GEMM " + c.key() + ": " + e.getMessage());
                }
            }
            if (forced == Strategy.LEGACY || forced == null && (!graphs || precision == Precision.F32 || best.micros() == Double.MAX_VALUE)) {
                try {
                    double t = time(() -> runner.run(Strategy.LEGACY, null, 0, c), best.micros());
                    if (t < best.micros()) best = new Choice(Strategy.LEGACY, null, t);
                } catch (CudaException e) {
                    // in 16 bits a graph or GEMM may have run where the legacy API has no kernel
                    if (best.micros() == Double.MAX_VALUE || forced == Strategy.LEGACY) throw e;
                    failures.add("LEGACY " + c.key() + ": " + e.getMessage());
                }
            }
            if (best.micros() == Double.MAX_VALUE) {
                throw new IllegalStateException("no convolution strategy runs " + c.key() + " in " + precision + ": " + failures);
            }
            if (forced != null && best.strategy() != forced) {
                throw new IllegalStateException("convolution strategy " + forced + " is not available for " + c.key() + "; " + failures);
            }
            return best;
        } catch (RuntimeException | Error e) {
            if (best.graph() != null) best.graph().close();   // the best graph so far goes with a failure after it
            throw e;
        }
    }

    /** Times every plan of a FUSED or GRAPH graph for this call; the better of its best and {@code best}. */
    private Choice tryGraph(Strategy st, Call c, Choice best) {
        ConvGraph.Spec spec = spec(c, st == Strategy.FUSED);
        if (st == Strategy.FUSED && !spec.fusable()) return best;
        ConvGraph cg;
        try {
            cg = ConvGraph.build(CudnnGraph.get(), handle, spec, workspace.bytes(), MAX_PLANS);
        } catch (CudaException e) {
            failures.add(st + " " + c.key() + ": " + e.getMessage());
            return best;
        }
        if (cg == null) return best;
        int bestPlan = -1;
        double bestTime = Double.MAX_VALUE;
        try {
            for (int i = 0; i < cg.plans.size(); i++) {
                int plan = i;
                double t;
                try {
                    t = time(() -> runner.run(st, cg, plan, c), Math.min(bestTime, best.micros()));
                } catch (CudaException e) {
                    failures.add(st + " plan " + i + " " + c.key() + ": " + e.getMessage());
                    continue;
                }
                if (t < bestTime) {
                    bestTime = t;
                    bestPlan = i;
                }
            }
        } catch (RuntimeException | Error e) {
            cg.close();   // a failure other than a plan's own (the stream's, the allocator's): the candidate goes with it
            throw e;
        }
        if (bestPlan < 0 || bestTime >= best.micros()) {
            cg.close();
            return best;
        }
        cg.keep(bestPlan);
        if (best.graph() != null) best.graph().close();
        return new Choice(st, cg, bestTime);
    }

    /**
     * The strategy an earlier process chose for {@code key} ({@link ConvChoiceStore}), with only its
     * plan finalised; null when none is remembered, a strategy is forced, or the remembered way no
     * longer builds here (the candidates are then timed again).
     */
    private Choice recall(Call c, Key key) {
        ConvChoiceStore.Entry e = forced == null ? remembered.get(key.toString()) : null;
        if (e == null || !rememberFirst && Double.isNaN(e.micros())) return null;
        Strategy st;
        try {
            st = Strategy.valueOf(e.way());
        } catch (IllegalArgumentException unknown) {
            return null;
        }
        ConvGraph cg = null;
        if (st == Strategy.GEMM && (!c.pointwise() || !runner.gemmAvailable())) return null;
        if (st == Strategy.FUSED || st == Strategy.GRAPH) {
            if (!graphApi || !c.aligned()) return null;
            ConvGraph.Spec spec = spec(c, st == Strategy.FUSED);
            ConvGraph.Origin origin = new ConvGraph.Origin(e.a(), e.b());
            try {
                cg = shared != null ? CudnnPlans.lendOrBuild(device, shared, spec, origin, workspace.bytes())
                        : ConvGraph.rebuild(CudnnGraph.get(), handle, spec, workspace.bytes(), origin);
            } catch (CudaException x) {
                failures.add("remembered " + st + " " + key + ": " + x.getMessage());
            }
            if (cg == null) return null;
            if (shared != null) lentGraphs++;
        }
        recalled++;
        // an untimed first choice (micros NaN) is still timed once it repeats, as in the process that met it
        return new Choice(st, cg, e.micros(), Double.isNaN(e.micros()), cg != null && shared != null, false);
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
        cu.streamSynchronize(stream);
        double[] t = new double[3];
        for (int i = 0; i < t.length; i++) {
            long t0 = System.nanoTime();
            r.run();
            cu.streamSynchronize(stream);
            t[i] = (System.nanoTime() - t0) / 1e3;
            if (i == 0 && t[0] > 1.5 * best) return t[0];
        }
        java.util.Arrays.sort(t);
        return t[1];
    }

    private ConvGraph.Spec spec(Call c, boolean fused) {
        Op.Conv2d op = c.p().op;
        int padH = op.padding() == Padding.SAME ? (op.kh() - 1) / 2 : 0, padW = op.padding() == Padding.SAME ? (op.kw() - 1) / 2 : 0;
        return new ConvGraph.Spec(ConvCalls.dataType(precision), c.in().n, c.in().h, c.in().w, op.cin(), c.in().stride, op.cout(), c.out().stride,
                op.kh(), op.kw(), padH, padW, op.bias() != null, op.act().kind(), op.act().slope(),
                c.residual() != null, c.residual() == null ? 0 : c.residual().stride, op.residualScale(),
                c.outer() != null, c.outer() == null ? 0 : c.outer().stride, op.outerScale(), fused);
    }

    /**
     * The workspace, at least {@code bytes} large, lent to another op on this stream between
     * convolutions (attention's chunks): so its scratch costs no memory beyond the workspace the
     * convolutions keep anyway. Valid until the next convolution or lend may grow it.
     */
    DeviceBuffer lend(long bytes) {
        ensureWorkspace(bytes);
        return workspace;
    }

    /**
     * Grows the one workspace to at least {@code bytes} (the planner counts it at the largest cap
     * any convolution has, so it is allocated at exactly that, not at what an algorithm happens to
     * use). cuBLAS gets the same memory: its GEMMs and cuDNN's calls run one after another on one stream.
     */
    private void ensureWorkspace(long bytes) {
        bytes = Math.max(bytes, workspaceFloor);
        if (workspace != null && workspace.bytes() >= bytes) return;
        ops.invalidateRecordings("grow the convolution workspace to " + bytes + " bytes");
        if (workspace != null) {
            runner.workspace(null);
            alloc.free(workspace);
        }
        workspace = null;
        try (var scope = alloc.tag("workspace", "convolution")) {
            workspace = alloc.allocate(bytes);
        }
        runner.workspace(workspace);
    }

    /**
     * Frees the workspace between jobs (the session is idle: its caller waited for the stream). The
     * plans built so far were chosen for a workspace of its size, so it comes back at least as large.
     */
    void releaseWorkspace() {
        if (choices.size() + plans.size() > KEPT_SHAPES) {
            ops.invalidateRecordings("drop the convolution plans of " + (choices.size() + plans.size()) + " shapes");
            dropPlans();   // a long-lived session meeting ever new image sizes would otherwise keep plans without bound
            calls.clear();
            workspaceFloor = 0;
        }
        if (!choices.isEmpty() && workspace != null) workspaceFloor = Math.max(workspaceFloor, workspace.bytes());
        giveBackLent();
        if (workspace == null) return;
        ops.invalidateRecordings("free the convolution workspace between jobs");
        runner.workspace(null);
        alloc.free(workspace);
        workspace = null;
    }

    /** Shapes whose plans a session keeps from one job to the next; beyond it they are dropped and made again when met. */
    static final int KEPT_SHAPES = 512;

    /** Destroys every shape's descriptors and graphs (the remembered choices stay, so they are rebuilt without timing). */
    private void dropPlans() {
        List<Runnable> steps = new ArrayList<>();
        steps.add(plans::close);
        for (Choice c : choices.values()) steps.add(() -> discard(c));   // one graph that fails to go leaks none of the others
        choices.clear();
        backgroundSpecs.clear();   // builds still running finish on the device's workers and wait in its pool
        backgroundBuilds.clear();
        dev.headroom.runtime.CloseSteps.run(steps.toArray(Runnable[]::new));
    }

    /**
     * Between jobs: gives the graphs lent by the device back to it, so another session meeting these
     * shapes takes them instead of finalising its own; this session takes them again (or others like
     * them) at its next call of each shape, through the remembered choice or the device's first choice.
     */
    private void giveBackLent() {
        if (choices.values().stream().noneMatch(Choice::lent)) return;
        ops.invalidateRecordings("give the convolution graphs back to the device between jobs");
        for (var it = choices.entrySet().iterator(); it.hasNext(); ) {
            Choice c = it.next().getValue();
            if (c.lent()) {
                discard(c);
                it.remove();
            }
        }
    }

    /** Frees descriptors, graphs, handles and the workspace, each even when one before it fails ({@link dev.headroom.runtime.CloseSteps}); call when the device is idle. */
    @Override
    public void close() {
        dev.headroom.runtime.CloseSteps.run(
                this::dropPlans,
                runner::close,
                () -> {
                    if (workspace != null) alloc.free(workspace);
                    workspace = null;
                },
                () -> dnn.destroyHandle(handle));
    }
}
