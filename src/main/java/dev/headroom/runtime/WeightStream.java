package dev.headroom.runtime;

import dev.headroom.core.TensorData;
import dev.headroom.core.Weights;
import dev.headroom.core.graph.Graph;
import dev.headroom.core.graph.Node;
import dev.headroom.core.graph.Op;
import dev.headroom.core.residency.SlotSchedule;
import dev.headroom.core.residency.StreamSplit;
import java.util.List;

/**
 * Weight streaming for one runner (partial residency): a model whose convolution kernels do not
 * fit their budget keeps a fixed resident set on the device and streams the rest, layer by layer,
 * through a few prefetch slots ({@link WeightSlots}). The split comes from
 * {@link StreamSplit#plan} (the planner's decision, from the budget, the device's copy and compute
 * rates and each layer's work at a planning tile); the order of copies and
 * uses from {@link SlotSchedule} (pure bookkeeping, tested on a fake device); this class only
 * walks that order as the runner reaches each convolution: {@link #begin} at the start of a pass,
 * then {@link #use} and {@link #done} around every convolution.
 *
 * <p>Usage: {@code PreparedWeights w = PreparedWeights.streamed(graph, weights, session, budget, 2);
 * new GraphRunner(graph, w, session)} runs like any runner; passes are not recorded as CUDA graphs
 * ({@link #NO_RECORDING}). A streamed model may also be shared by sessions through the residency
 * manager ({@link Residency#acquire(String, dev.headroom.core.residency.ResidencyPolicy.Priority,
 * Residency.Loader, Session, long)}): one resident set, one set of slots and one staged host copy
 * for all of them; passes then take turns ({@link #begin} to {@link #end}, each bound to its
 * session), since a pass's slot assignment is the host's schedule.
 */
public final class WeightStream implements AutoCloseable {
    /** Why a streamed pass is never recorded as a CUDA graph. */
    public static final String NO_RECORDING = "weights are streamed: a recorded pass would replay copies into slots whose"
            + " contents the host's schedule tracks, and would freeze one pass's slot assignment for every pass";

    /** The place of a streamed layer in {@link PreparedWeights}: its weights come from a slot when the pass reaches it. */
    record Streamed(Op.Conv2d op, int layer) implements Ops.ConvWeights {}

    private final Graph graph;
    private final boolean[] streamed;
    /** Held from {@link #begin} to {@link #end}: one pass at a time walks the schedule. */
    private final java.util.concurrent.locks.ReentrantLock pass = new java.util.concurrent.locks.ReentrantLock();
    private SlotSchedule schedule;
    private final WeightSlots slots;
    private final StreamSplit split;
    private List<SlotSchedule.Step> steps = List.of();
    private int cursor;
    private int slot = -1;
    /** Counts of schedules dropped after a failed pass. */
    private long lostLoads, lostUses;

    /** The streamed convolutions' ops, to their node ids; the first one's id. */
    private final java.util.Map<Op.Conv2d, Integer> streamedOps = new java.util.IdentityHashMap<>();
    private int firstStreamed = -1;

    WeightStream(Graph graph, boolean[] streamed, WeightSlots slots, StreamSplit split) {
        this.graph = graph;
        this.streamed = streamed;
        for (Node n : graph.nodes()) {
            if (streamed[n.id()] && n.op() instanceof Op.Conv2d c) {
                streamedOps.put(c, n.id());
                if (firstStreamed < 0) firstStreamed = n.id();
            }
        }
        this.schedule = new SlotSchedule(streamed, split.slots());
        this.slots = slots;
        this.split = split;
    }

    /**
     * Where streamed weights are prepared: a session (weights for one runner) or a device in one
     * precision (a model shared by that precision's sessions through the residency manager).
     */
    interface Target {
        /** See {@link Ops#kernelBytes}. */
        long kernelBytes(Op.Conv2d op, TensorData kernel);

        /** The device's copy and compute rates for the planner ({@link Device#streamCost}). */
        StreamSplit.Cost cost();

        /** The tile side (input pixels) the planner weighs each layer's compute at. */
        int tile();

        /** See {@link Ops#weightSlots}, {@link Device#weightSlots}. */
        WeightSlots slots(int count, long slotBytes);

        /** A resident layer's weights. */
        Ops.ConvWeights prepareConv(Op.Conv2d op, TensorData kernel, float[] bias, float[] slope);

        static Target of(Ops ops) {
            Session session = ops instanceof Session x ? x : null;
            return new Target() {
                public long kernelBytes(Op.Conv2d op, TensorData kernel) { return ops.kernelBytes(op, kernel); }
                public StreamSplit.Cost cost() { return session == null ? StreamSplit.Cost.NONE : session.device().streamCost(session.precision()); }
                public int tile() { return session == null ? CPU_TILE : planningTile(session.device()); }
                public WeightSlots slots(int count, long slotBytes) { return ops.weightSlots(count, slotBytes); }
                public Ops.ConvWeights prepareConv(Op.Conv2d op, TensorData k, float[] b, float[] s) { return ops.prepareConv(op, k, b, s); }
            };
        }

        static Target of(Device device, dev.headroom.core.Precision precision) {
            return new Target() {
                public long kernelBytes(Op.Conv2d op, TensorData kernel) { return device.kernelBytes(op, kernel, precision); }
                public StreamSplit.Cost cost() { return device.streamCost(precision); }
                public int tile() { return planningTile(device); }
                public WeightSlots slots(int count, long slotBytes) { return device.weightSlots(precision, count, slotBytes); }
                public Ops.ConvWeights prepareConv(Op.Conv2d op, TensorData k, float[] b, float[] s) { return device.prepareConv(op, k, b, s, precision); }
            };
        }
    }

    /** Each convolution's kernel bytes on {@code target}, in walk order (0 for a kernel the weights lack: prepare names it). */
    static long[] kernelBytes(List<Node> convs, Weights weights, Target target) {
        long[] bytes = new long[convs.size()];
        for (int i = 0; i < bytes.length; i++) {
            Op.Conv2d c = (Op.Conv2d) convs.get(i).op();
            bytes[i] = weights.has(c.weight()) ? target.kernelBytes(c, weights.get(c.weight())) : 0;
        }
        return bytes;
    }

    static PreparedWeights prepare(Graph graph, Weights weights, Ops ops, long budget, int slotCount) {
        return prepare(graph, weights, Target.of(ops), budget, slotCount);
    }

    /** Slot count 0: the planner chooses it from the cost model ({@link StreamSplit#plan}). */
    public static final int AUTO_SLOTS = 0;
    /** The tile sides (input pixels) the planner weighs layers' compute at, and budgets one tile's activations for ({@link #autoBudget}). */
    public static final int GPU_TILE = 256, CPU_TILE = 64;

    static int planningTile(Device device) {
        return device.accelerator() ? GPU_TILE : CPU_TILE;
    }

    /** Each convolution's multiply-adds for one {@code tile} x {@code tile} input, in walk order. */
    static long[] macs(Graph graph, List<Node> convs, int tile) {
        int[] hs = graph.heights(tile), ws = graph.widths(tile);
        long[] macs = new long[convs.size()];
        for (int i = 0; i < macs.length; i++) {
            Node n = convs.get(i);
            Op.Conv2d c = (Op.Conv2d) n.op();
            macs[i] = (long) c.kh() * c.kw() * c.cin() * c.cout() * hs[n.id()] * ws[n.id()];
        }
        return macs;
    }

    /** The split {@code budget} gets on {@code target} (the planner's decision; see {@link StreamSplit#plan}). */
    static StreamSplit split(Graph graph, Weights weights, Target target, long budget, int slotCount) {
        List<Node> convs = convs(graph);
        long[] bytes = kernelBytes(convs, weights, target);
        int[] uses = new int[bytes.length];
        java.util.Arrays.fill(uses, 1);
        return StreamSplit.plan(bytes, uses, macs(graph, convs, target.tile()), budget, slotCount, target.cost());
    }

    /**
     * Prepares {@code graph}'s weights on {@code target} within {@code budget} bytes of convolution
     * kernels (slots included; biases and slopes stay resident on top): everything resident when
     * it fits, else the split's resident layers prepared as usual and the others staged for streaming.
     */
    static PreparedWeights prepare(Graph graph, Weights weights, Target target, long budget, int slotCount) {
        List<Node> convs = convs(graph);
        StreamSplit split = split(graph, weights, target, budget, slotCount);
        if (split.streamedCount() == 0) return PreparedWeights.prepare(graph, weights, target::prepareConv);
        boolean[] streamed = new boolean[graph.size()];
        for (int i = 0; i < convs.size(); i++) streamed[convs.get(i).id()] = !split.resident()[i];
        WeightSlots ws = target.slots(split.slots(), split.slotBytes());
        try {
            PreparedWeights p = PreparedWeights.prepare(graph, weights, (op, kernel, bias, slope) -> {
                int id = idOf(graph, op);
                if (!streamed[id]) return target.prepareConv(op, kernel, bias, slope);
                ws.stage(id, op, kernel, bias, slope);
                return new Streamed(op, id);
            });
            p.stream = new WeightStream(graph, streamed, ws, split);
            return p;
        } catch (RuntimeException | Error e) {
            CloseSteps.afterFailure(e, ws::close);
            throw e;
        }
    }

    private static List<Node> convs(Graph graph) {
        return graph.nodes().stream().filter(n -> n.op() instanceof Op.Conv2d).toList();
    }

    /**
     * What an evicted streamed model keeps in host memory besides its resident layers' copy: the
     * staged layers (one more reference to them) and the split, from which {@link #restore} makes
     * a stream again without staging anything.
     */
    HostPart toHost() {
        return new HostPart(graph, streamed, split, slots.staging().retain());
    }

    /** See {@link #toHost}; closing releases the staged layers (freed once the slots are gone too). */
    public record HostPart(Graph graph, boolean[] streamed, StreamSplit split, StagedLayers staging) implements AutoCloseable {
        long bytes() {
            return staging.bytes();
        }

        /** New slots over the staged layers (charged as the calling thread charges), and a stream over them; fills {@code conv}'s streamed places. */
        WeightStream restore(Ops.ConvWeights[] conv) {
            WeightSlots ws = staging.slots(split.slots(), split.slotBytes());
            try {
                for (Node n : graph.nodes()) if (streamed[n.id()] && n.op() instanceof Op.Conv2d c) conv[n.id()] = new Streamed(c, n.id());
                return new WeightStream(graph, streamed, ws, split);
            } catch (RuntimeException | Error e) {
                CloseSteps.afterFailure(e, ws::close);   // the new slots and their reference to the staged layers; the host part keeps its own
                throw e;
            }
        }

        @Override
        public void close() {
            staging.release();
        }
    }

    /**
     * The planner's choice of a weight budget on {@code ops}' device when none is given: the usable
     * share of the ledger (up to its critical threshold, less what is already charged) pays first
     * for the activations of one {@code tile} x {@code tile} tile (in whole allocator segments),
     * the weights get the rest.
     * Long.MAX_VALUE when every kernel fits beside that tile (nothing to stream).
     */
    public static long autoBudget(Graph graph, Weights weights, Ops ops, int tile) {
        var memory = ops.memory();
        if (memory == null) return Long.MAX_VALUE;
        long usable = (long) (memory.ledger().limit() * memory.thresholds().critical()) - memory.ledger().used();
        return autoBudget(graph, weights, Target.of(ops), ops.memoryModel(), tile, usable);
    }

    /**
     * As {@link #autoBudget(Graph, Weights, Ops, int)} for a model shared on {@code device} by
     * sessions of {@code precision} (the job server's): the usable share of the whole budget
     * (other models' idle weights can be evicted), one planning tile's activations
     * ({@link #planningTile}) first.
     */
    public static long autoBudget(Graph graph, Weights weights, Device device, dev.headroom.core.Precision precision) {
        var memory = device.memory();
        long usable = (long) (memory.ledger().limit() * memory.thresholds().critical());
        return autoBudget(graph, weights, Target.of(device, precision), device.memoryModel(precision), planningTile(device), usable);
    }

    private static long autoBudget(Graph graph, Weights weights, Target target, dev.headroom.core.plan.DeviceModel model, int tile, long usable) {
        long kernels = 0;
        for (long b : kernelBytes(convs(graph), weights, target)) kernels += b;
        var plan = dev.headroom.core.plan.Planner.plan(graph, 1, tile, tile, model, true);
        // the allocator reserves whole segments: a large one for the arena, small ones for the rest
        long seg = dev.headroom.runtime.memory.CachingAllocator.LARGE_SEGMENT;
        long activations = (plan.peak() - plan.weights() + seg - 1) / seg * seg + dev.headroom.runtime.memory.CachingAllocator.SMALL_SEGMENT;
        return kernels + activations <= usable ? Long.MAX_VALUE : usable - activations;
    }

    /**
     * What a model's weights would be streamed as within {@code budget}, from a planner's view of
     * a device alone (no device: `plan --weight-budget`): the split, the memory model that holds
     * the weights so, and the cost model's time of one pass at a {@code tile} tile, streamed and
     * resident.
     */
    public record Planned(dev.headroom.core.plan.DeviceModel model, StreamSplit split, double passNanos, double residentNanos) {}

    /**
     * The split {@link StreamSplit#plan} makes within {@code budget}, each convolution's bytes as
     * {@code held} counts them (kernel, bias and slopes: a little more than a slot holds), its
     * compute at a {@code tile} tile; throws IllegalArgumentException (with the bytes needed) for a
     * budget too small for the slots.
     */
    public static Planned planned(dev.headroom.core.plan.DeviceModel held, Graph graph, StreamSplit.Cost cost, int tile, long budget) {
        List<Node> convs = convs(graph);
        long[] bytes = new long[convs.size()], macs = macs(graph, convs, tile);
        int[] uses = new int[convs.size()];
        for (int i = 0; i < bytes.length; i++) {
            bytes[i] = held.weightBytes((Op.Conv2d) convs.get(i).op());
            uses[i] = 1;
        }
        StreamSplit split = StreamSplit.plan(bytes, uses, macs, budget, AUTO_SLOTS, cost);
        boolean[] all = new boolean[bytes.length];
        java.util.Arrays.fill(all, true);
        double resident = new StreamSplit(all, 0, 0, 0, 0).passNanos(bytes, macs, cost);
        if (split.streamedCount() == 0) return new Planned(held, split, resident, resident);
        java.util.Map<Op.Conv2d, Integer> ops = new java.util.IdentityHashMap<>();
        int first = -1;
        for (int i = 0; i < convs.size(); i++) {
            if (split.resident()[i]) continue;
            ops.put((Op.Conv2d) convs.get(i).op(), convs.get(i).id());
            if (first < 0) first = convs.get(i).id();
        }
        return new Planned(view(held, ops, first, split), split, split.passNanos(bytes, macs, cost), resident);
    }

    /**
     * {@code base} as a model streamed within {@code budget} on {@code device} in {@code precision}
     * would hold its weights (the split the residency manager would make; see
     * {@link #memoryModel(dev.headroom.core.plan.DeviceModel)}): for planning a job before its
     * model is loaded. {@code base} itself when nothing would be streamed, or the budget cannot
     * hold the slots (loading will then refuse it with the numbers).
     */
    public static dev.headroom.core.plan.DeviceModel plannedModel(dev.headroom.core.plan.DeviceModel base, Graph graph, Weights weights, Device device,
                                                                  dev.headroom.core.Precision precision, long budget) {
        if (budget == Long.MAX_VALUE) return base;
        StreamSplit split;
        try {
            split = split(graph, weights, Target.of(device, precision), budget, AUTO_SLOTS);
        } catch (IllegalArgumentException e) {
            return base;
        }
        if (split.streamedCount() == 0) return base;
        java.util.Map<Op.Conv2d, Integer> ops = new java.util.IdentityHashMap<>();
        int first = -1;
        List<Node> convs = convs(graph);
        for (int i = 0; i < convs.size(); i++) {
            if (split.resident()[i]) continue;
            ops.put((Op.Conv2d) convs.get(i).op(), convs.get(i).id());
            if (first < 0) first = convs.get(i).id();
        }
        return view(base, ops, first, split);
    }

    private static int idOf(Graph graph, Op.Conv2d op) {
        for (Node n : graph.nodes()) if (n.op() == op) return n.id();
        throw new IllegalStateException("convolution " + op + " is not in the graph");
    }

    /**
     * {@code base} as this stream holds the weights: a streamed convolution's kernel takes no
     * device bytes of its own, and the slots are counted once (with the first streamed layer),
     * so a plan's predicted peak, and a fitter's tile, see the weights as they really are.
     */
    public dev.headroom.core.plan.DeviceModel memoryModel(dev.headroom.core.plan.DeviceModel base) {
        return view(base, streamedOps, firstStreamed, split);
    }

    private static dev.headroom.core.plan.DeviceModel view(dev.headroom.core.plan.DeviceModel base, java.util.Map<Op.Conv2d, Integer> streamedOps,
                                                          int firstStreamed, StreamSplit split) {
        return new dev.headroom.core.plan.DeviceModel() {
            public int elementBytes() { return base.elementBytes(); }
            public long weightBytes(Op.Conv2d conv) {
                Integer id = streamedOps.get(conv);
                if (id == null) return base.weightBytes(conv);
                return id == firstStreamed ? split.slots() * split.slotBytes() : 0;
            }
            public long inputBytes(int n, int h, int w, int c) { return base.inputBytes(n, h, w, c); }
            public long scratch(Node node, int[] in, int[] out, boolean inDense, boolean outDense) {
                return base.scratch(node, in, out, inDense, outDense);
            }
            public long persistent(Node node, int[] in, int[] out) { return base.persistent(node, in, out); }
            public long[] arenaScratch(Node node, int[] in, int[] out) { return base.arenaScratch(node, in, out); }
        };
    }

    /** One line for traces and messages: how many layers are streamed, through which slots, what is resident. */
    public String describe() {
        return "streamed " + split.streamedCount() + " of " + split.resident().length + " layers through " + split.slots() + " slots of "
                + dev.headroom.core.Sizes.format(split.slotBytes()) + ", " + dev.headroom.core.Sizes.format(split.residentBytes()) + " resident, "
                + dev.headroom.core.Sizes.format(split.streamedBytes()) + " copied a pass";
    }

    /** The split this stream runs: which layers are resident, the slots, bytes copied per pass. */
    public StreamSplit split() {
        return split;
    }

    /** Copies issued so far, and streamed uses. */
    public long loads() {
        return lostLoads + schedule.loads();
    }

    public long streamedUses() {
        return lostUses + schedule.streamedUses();
    }

    /**
     * Starts a pass on {@code session} that reaches the convolutions {@code sequence} (node ids) in
     * that order, and issues its first copies; waits while another session's pass is under way
     * (only the host's issuing is in turns: on a GPU the device orders the passes with events).
     * Every begin is followed by {@link #end} on the same thread, however the pass ends.
     */
    void begin(int[] sequence, Ops session) {
        pass.lock();
        try {
            slots.bind(session);
            begin(sequence);
        } catch (RuntimeException | Error e) {
            pass.unlock();
            throw e;
        }
    }

    /** The pass {@link #begin} started has issued all its work (or failed): the next pass may start. */
    void end() {
        if (pass.isHeldByCurrentThread()) pass.unlock();
    }

    private void begin(int[] sequence) {
        if (cursor < steps.size()) {
            // the last pass stopped half way (an error): whatever it issued is behind a "used"
            // now, and the slots are taken as empty, so nothing relies on copies it never issued
            for (int s = 0; s < split.slots(); s++) slots.used(s);
            long loads = schedule.loads(), uses = schedule.streamedUses();
            schedule = new SlotSchedule(streamed, split.slots());
            lostLoads += loads;
            lostUses += uses;
        }
        steps = schedule.pass(sequence);
        cursor = 0;
        issueLoads();
    }

    /** The weights to run node {@code id} with: {@code prepared} when resident, else its slot's. */
    Ops.ConvWeights use(int id, Ops.ConvWeights prepared) {
        if (cursor >= steps.size() || !(steps.get(cursor) instanceof SlotSchedule.Use u) || u.layer() != id) {
            throw new IllegalStateException("the pass reached layer " + id + " where the stream's schedule has "
                    + (cursor < steps.size() ? steps.get(cursor) : "nothing"));
        }
        cursor++;
        slot = u.slot();
        return u.resident() ? prepared : slots.use(id, u.slot());
    }

    /** The convolution {@link #use} gave weights for is issued: frees its slot and issues the copies that were waiting for it. */
    void done() {
        if (slot >= 0) slots.used(slot);
        slot = -1;
        issueLoads();
    }

    private void issueLoads() {
        while (cursor < steps.size() && steps.get(cursor) instanceof SlotSchedule.Load l) {
            slots.load(l.layer(), l.slot());
            cursor++;
        }
    }

    @Override
    public void close() {
        slots.close();
    }
}
