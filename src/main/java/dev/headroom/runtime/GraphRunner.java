package dev.headroom.runtime;

import dev.headroom.core.Weights;
import dev.headroom.core.graph.ConcatPlan;
import dev.headroom.core.graph.Graph;
import dev.headroom.core.graph.Node;
import dev.headroom.core.graph.Op;
import dev.headroom.core.plan.Bands;
import dev.headroom.core.plan.MemoryPlan;
import dev.headroom.core.plan.Planner;

/**
 * Runs a {@link Graph} on one backend (a session). Weights are checked and prepared once, at
 * construction, or shared from the residency manager ({@link PreparedWeights});
 * {@link #run} then executes the nodes in order inside the arena of the shape's
 * {@link MemoryPlan}, writing concatenation inputs straight into their concatenation's buffer
 * ({@link ConcatPlan}); buffers whose lifetimes do not meet share bytes, and a node's scratch
 * ({@link MemoryPlan#SCRATCH}: attention's chunks) lies in the arena too. The largest arena used is
 * kept for reports.
 */
public final class GraphRunner implements AutoCloseable {
    private final Graph graph;
    private final Ops ops;
    private final PreparedWeights weights;
    private final boolean ownsWeights;
    private final Ops.ConvWeights[] conv;
    private final float[][] slope;
    /** Per node: the float parameters of ops without prepared weights (GroupNorm's gamma and beta; a strided convolution's kernel and bias). */
    private final float[][][] params;
    private final ConcatPlan placement;
    /** Streamed weights' schedule, or null when every convolution is resident. */
    private final WeightStream stream;
    private final java.util.Map<String, MemoryPlan> plans = new java.util.HashMap<>();
    private long peakBytes;
    private final java.util.Map<String, Long> nanosByOp = new java.util.TreeMap<>();
    /** While profiling: time per op and shape ("conv3x3+residual 512>256 @512x512"), in nanoseconds. */
    private final java.util.Map<String, Long> nanosByShape = new java.util.TreeMap<>();
    private boolean profiling;
    private boolean bands = true;
    private final Replays replays;
    private boolean record = true;

    /** Prepares {@code weights} on {@code ops} for this runner alone (freed when it closes). */
    public GraphRunner(Graph graph, Weights weights, Ops ops) {
        this(graph, PreparedWeights.prepare(graph, weights, ops::prepareConv), true, ops);
    }

    /**
     * Runs {@code graph} with weights prepared elsewhere and shared (a {@link Residency} lease's),
     * which this runner does not free; they must be of {@code ops}' device and precision.
     */
    public GraphRunner(Graph graph, PreparedWeights weights, Ops ops) {
        this(graph, weights, false, ops);
    }

    /** Runs {@code graph} with {@code weights} prepared for it alone (e.g. {@link PreparedWeights#streamed}), freed when the runner closes. */
    public static GraphRunner owning(Graph graph, PreparedWeights weights, Ops ops) {
        return new GraphRunner(graph, weights, true, ops);
    }

    private GraphRunner(Graph graph, PreparedWeights weights, boolean owned, Ops ops) {
        this.graph = graph;
        this.ops = ops;
        this.weights = weights;
        this.ownsWeights = owned;
        this.conv = weights.conv;
        this.slope = weights.slope;
        this.params = weights.params;
        this.placement = ConcatPlan.of(graph);
        this.replays = new Replays(ops);
        this.stream = weights.stream;
    }

    public Graph graph() {
        return graph;
    }

    /** The float parameters bound to node {@code id} (see {@link #params}), or null. */
    public float[][] params(int id) {
        return params[id];
    }

    /** Node {@code id}'s prepared convolution weights, or null. */
    public Ops.ConvWeights convWeights(int id) {
        return conv[id];
    }

    /** Node {@code id}'s PReLU slopes, or null. */
    public float[] slope(int id) {
        return slope[id];
    }

    /** The backend this runner runs on. */
    public Ops ops() {
        return ops;
    }

    /** The backend's memory, or null. */
    public dev.headroom.runtime.memory.DeviceMemory memory() {
        return ops.memory();
    }

    /** The largest activation arena any run used, in bytes. */
    public long peakBytes() {
        return peakBytes;
    }

    /** Time per kind of op (convolutions by kernel size) over all runs so far, in nanoseconds; see {@link #profile}. */
    public java.util.Map<String, Long> nanosByOp() {
        return java.util.Collections.unmodifiableMap(nanosByOp);
    }

    /**
     * Device time per op and shape over the profiled runs, in nanoseconds: each kind of op split by
     * kernel size, channels and output size ("conv3x3+residual 512>256 @512x512"), to find which
     * layers a pass spends its time in.
     */
    public java.util.Map<String, Long> nanosByShape() {
        return java.util.Collections.unmodifiableMap(nanosByShape);
    }

    public void resetProfile() {
        nanosByOp.clear();
        nanosByShape.clear();
    }

    /**
     * With profiling on, the runner waits for the device after every node, so {@link #nanosByOp}
     * is the device's time per op (plus one synchronisation each) rather than the time to issue it.
     */
    public void profile(boolean on) {
        profiling = on;
    }

    private static String opLabel(Node n) {
        if (!(n.op() instanceof Op.Conv2d c)) return n.op().kind();
        return n.op().kind() + (c.act().kind() != dev.headroom.core.graph.Act.Kind.NONE ? "+" + c.act().kind().name().toLowerCase() : "")
                + (c.hasResidual() ? "+residual" : "") + (c.hasOuterResidual() ? "+outer" : "");
    }

    private static String shapeLabel(Node n, Tensor[] ins, Tensor out) {
        return opLabel(n) + " " + ins[0].c + ">" + out.c + " @" + out.h + "x" + out.w;
    }

    /** The memory plan for an (n, h, w) input on this backend, made once per shape. */
    public MemoryPlan plan(int n, int h, int w) {
        return plans.computeIfAbsent(n + "x" + h + "x" + w, k -> Planner.plan(graph, n, h, w, memoryModel(), bands));
    }

    /**
     * Runs (n, h, w) inputs with {@code p} instead of planning them again: the fitter's plan for the
     * tile shape it chose (made for this backend's memory model and band setting), or, in tests,
     * each alternative in turn.
     */
    public void usePlan(int n, int h, int w, MemoryPlan p) {
        replays.close();
        plans.put(n + "x" + h + "x" + w, p);
    }

    /**
     * Whether the planner may run the graph's tail in row bands ({@link Bands}; on by default).
     * Off, every node runs on whole tensors: more memory, for comparison.
     */
    public void bands(boolean allowed) {
        if (allowed != bands) {
            plans.clear();
            replays.close();
        }
        bands = allowed;
    }

    /**
     * Whether forward passes may be recorded and replayed ({@link Ops#record}: CUDA graphs; on by
     * default): a pass that repeats is recorded on its second run and then replayed with one call
     * where that is faster than issuing its ops one by one ({@link Replays}). Profiling runs op by
     * op regardless.
     */
    public void record(boolean allowed) {
        if (!allowed) replays.close();
        record = allowed;
    }

    /** What the backend allocates, with the weights as this runner holds them (streamed ones take only their slots): for planners. */
    public dev.headroom.core.plan.DeviceModel memoryModel() {
        return stream == null ? ops.memoryModel() : stream.memoryModel(ops.memoryModel());
    }

    /** The schedule of streamed weights, or null when every convolution is resident. */
    public WeightStream weightStream() {
        return stream;
    }

    /** Why passes are not recorded even where {@link #record} allows it (weights streamed), or null. */
    public String recordingRefused() {
        return stream != null ? WeightStream.NO_RECORDING : null;
    }

    /** How many forward passes ran as replays of a recording. */
    public long replays() {
        return replays.count();
    }

    /**
     * in is (N, H, W, inputChannels); returns (N, H*scale, W*scale, outputChannels). All
     * activations live in one arena of the plan's size, allocated once for the run; each buffer
     * sits at its planned offset, and concatenation inputs at their channel offset inside it.
     */
    public Tensor run(Tensor in) {
        return run(in, ops::download);
    }

    /**
     * As {@link #run(Tensor)}, but returns once the pass and the copy of its output are queued:
     * the host may prepare the next input, or use the last output, while the device works. The
     * next {@code submit} may be issued before this one's {@code get()}; runs on one backend
     * follow each other in order.
     */
    public Ops.Download submit(Tensor in) {
        return run(in, ops::downloadLater);
    }

    /**
     * As {@link #run(Tensor)}, but {@code finish} receives the output while it is still in the
     * arena (on the device) and its result is returned: {@code ops::download} for a host tensor,
     * or a synchronisation alone to time the forward pass on the device, as PyTorch's figures are
     * taken. An input already on the device is used as it is and not freed.
     *
     * <p>The nodes before the plan's tail run on whole tensors; the tail then runs band after band,
     * each node on the rows its band needs, reading row views of its inputs, and each band's output
     * rows are copied into the whole output.
     */
    public <T> T run(Tensor in, java.util.function.Function<Tensor, T> finish) {
        if (in.c != graph.inputChannels()) {
            throw new IllegalArgumentException("model takes " + graph.inputChannels() + " channels, input has " + in.c);
        }
        MemoryPlan plan = plan(in.n, in.h, in.w);
        Bands bands = plan.bands();
        int size = graph.size(), tail = bands == null ? size : bands.start;
        int[] hs = graph.heights(in.h), ws = graph.widths(in.w);
        var memory = ops.memory();
        Tensor input = null;
        DeviceBuffer arena = null;
        try {
            try (var scope = memory == null ? null : memory.tag("activations", "input")) {
                input = ops.upload(in);
            }
            try (var scope = memory == null ? null : memory.tag("activations", "arena")) {
                arena = ops.allocateArena(plan.arenaBytes());
            }
            peakBytes = Math.max(peakBytes, plan.arenaBytes());
            Tensor[] whole = new Tensor[size];                                      // by root id
            Tensor[][] banded = new Tensor[bands == null ? 0 : bands.count][size];  // by band, node id
            for (MemoryPlan.Buffer b : plan.buffers()) {
                int r = b.root();
                if (b.band() == MemoryPlan.SCRATCH) continue;   // a node's scratch: handed to it as it runs (step)
                if (b.band() < 0) whole[r] = ops.view(arena, b.offset(), in.n, hs[r], ws[r], graph.channels(r));
                else banded[b.band()][r] = ops.view(arena, b.offset(), 1, bands.rows(b.band(), r), ws[r], graph.channels(r));
            }
            int o = graph.output();
            Tensor output = bands != null ? whole[o] : whole[placement.root(o)].slice(placement.offset(o), graph.channels(o));
            Tensor x = input;
            DeviceBuffer held = arena;
            Runnable forward = () -> forward(x, whole, banded, bands, plan, held);
            if (stream != null) {
                stream.begin(convSequence(bands), ops);   // one pass at a time where sessions share the stream
                try {
                    forward.run();
                } finally {
                    stream.end();
                }
                return finish.apply(output);
            }
            if (!record || profiling) {
                forward.run();
                return finish.apply(output);
            }
            long t0 = System.nanoTime();
            var pass = new Replays.Pass(in.n, in.h, in.w, x.onHost() ? -1 : x.device.address() + (long) x.offset * x.precision.bytes, x.stride, arena.address());
            Replays.Trial trial = replays.issue(pass, forward);
            T result = finish.apply(output);
            if (trial != Replays.Trial.NONE) ops.synchronize();   // a trial is timed until the device is done, whatever finish waits for
            replays.finished(pass, trial, System.nanoTime() - t0);
            return result;
        } finally {
            if (arena != null) ops.releaseArena(arena);
            if (input != null && input != in) ops.release(input);
        }
    }

    /** The forward pass op by op: whole nodes, then the tail band by band (see {@link #run(Tensor, java.util.function.Function)}). */
    private void forward(Tensor input, Tensor[] whole, Tensor[][] banded, Bands bands, MemoryPlan plan, DeviceBuffer arena) {
        int size = graph.size(), tail = bands == null ? size : bands.start;
        Tensor[] values = new Tensor[size];
        values[0] = input;
        for (int id = 1; id < tail; id++) {
            Node node = graph.node(id);
            Tensor[] ins = new Tensor[node.arity()];
            for (int j = 0; j < ins.length; j++) ins[j] = values[node.input(j)];
            values[id] = whole[placement.root(id)].slice(placement.offset(id), graph.channels(id));
            timed(node, ins, values[id], scratch(plan, arena, id));
        }
        if (bands != null) {
            int o = graph.output();
            values[o] = whole[o];
            for (int k = 0; k < bands.count; k++) {
                Tensor[] band = banded[k];
                for (int v = tail; v < size; v++) {
                    Node node = graph.node(v);
                    Tensor[] ins = new Tensor[node.arity()];
                    for (int j = 0; j < ins.length; j++) {
                        int u = node.input(j), lo = bands.readFrom(k, v, j), hi = bands.readTo(k, v, j);
                        ins[j] = u >= tail ? band[u].rows(lo - bands.from(k, u), hi - bands.from(k, u)) : values[u].rows(lo, hi);
                    }
                    timed(node, ins, band[v], null);
                }
                long t0 = System.nanoTime();
                ops.copy(band[o].rows(bands.outFrom(k) - bands.from(k, o), bands.outTo(k) - bands.from(k, o)),
                        values[o].rows(bands.outFrom(k), bands.outTo(k)));
                if (profiling) ops.synchronize();
                nanosByOp.merge("band copy", System.nanoTime() - t0, Long::sum);
            }
        }
    }

    /** The convolutions' node ids in the order a pass reaches them: whole nodes, then the tail once per band. */
    private int[] convSequence(Bands bands) {
        int size = graph.size(), tail = bands == null ? size : bands.start;
        java.util.List<Integer> seq = new java.util.ArrayList<>();
        for (int id = 1; id < tail; id++) if (graph.node(id).op() instanceof Op.Conv2d) seq.add(id);
        for (int k = 0; bands != null && k < bands.count; k++)
            for (int id = tail; id < size; id++) if (graph.node(id).op() instanceof Op.Conv2d) seq.add(id);
        return seq.stream().mapToInt(Integer::intValue).toArray();
    }

    /** Node {@code id}'s scratch in the arena ({@link MemoryPlan#SCRATCH}), or null. */
    private static DeviceBuffer scratch(MemoryPlan plan, DeviceBuffer arena, int id) {
        MemoryPlan.Buffer b = plan.scratchOf(id);
        if (b == null) return null;
        long at = arena.address() + b.offset(), bytes = b.bytes();
        return new DeviceBuffer() {
            public long address() { return at; }
            public long bytes() { return bytes; }
        };
    }

    private void timed(Node node, Tensor[] ins, Tensor out, DeviceBuffer scratch) {
        var memory = ops.memory();
        try (var scope = memory == null ? null : memory.tag("activations", node.name())) {
            long t0 = System.nanoTime();
            step(node, ins, out, scratch);
            if (profiling) ops.synchronize();
            long ns = System.nanoTime() - t0;
            nanosByOp.merge(opLabel(node), ns, Long::sum);
            if (profiling) nanosByShape.merge(shapeLabel(node, ins, out), ns, Long::sum);
        }
    }

    /** Frees the recordings, and the prepared weights (device copies) when this runner prepared them itself. */
    @Override
    public void close() {
        replays.close();
        if (ownsWeights) weights.close();
    }

    /** Runs one node: {@code in} holds its inputs in order, {@code out} its output (a whole buffer, slice or band). */
    private void step(Node node, Tensor[] in, Tensor out, DeviceBuffer scratch) {
        Tensor x = in[0];
        switch (node.op()) {
            case Op.Input i -> throw new IllegalStateException("second input node");
            case Op.Conv2d c -> {
                Ops.ConvWeights w = stream == null ? conv[node.id()] : stream.use(node.id(), conv[node.id()]);
                ops.conv2d(x, w, c.hasResidual() ? in[1] : null, c.hasOuterResidual() ? in[2] : null, out);
                if (stream != null) stream.done();
            }
            case Op.Activation a -> ops.activation(x, a.act(), slope[node.id()], out);
            case Op.Add a -> ops.add(in, out);
            case Op.Scale s -> ops.scale(x, s.factor(), out);
            case Op.UpsampleNearest u -> ops.upsampleNearest(x, u.factor(), out);
            case Op.PixelShuffle p -> ops.pixelShuffle(x, p.factor(), p.order(), out);
            case Op.PixelUnshuffle p -> ops.pixelUnshuffle(x, p.factor(), p.order(), out);
            case Op.GroupNorm g -> ops.groupNorm(x, g, params[node.id()][0], params[node.id()][1], out);
            case Op.StridedConv c -> ops.stridedConv(x, c, params[node.id()][0], params[node.id()][1], out);
            case Op.Attention a -> {
                if (scratch != null) ops.attention(in[0], in[1], in[2], a.scale(), out, scratch);
                else ops.attention(in[0], in[1], in[2], a.scale(), out);
            }
            case Op.Concat c -> {
                int off = 0;
                for (int j = 0; j < in.length; j++) {
                    int src = node.input(j);
                    boolean inPlace = placement.root(src) == placement.root(node.id())
                            && placement.offset(src) == placement.offset(node.id()) + off;
                    if (!inPlace) ops.copy(in[j], out.slice(off, graph.channels(src)));
                    off += graph.channels(src);
                }
            }
        }
    }
}
