package dev.headroom.runtime;

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
 * {@link StreamSplit#choose} (the planner's decision, from the budget); the order of copies and
 * uses from {@link SlotSchedule} (pure bookkeeping, tested on a fake device); this class only
 * walks that order as the runner reaches each convolution: {@link #begin} at the start of a pass,
 * then {@link #use} and {@link #done} around every convolution.
 *
 * <p>Usage: {@code PreparedWeights w = PreparedWeights.streamed(graph, weights, session, budget, 2);
 * new GraphRunner(graph, w, session)} runs like any runner; passes are not recorded as CUDA graphs
 * ({@link #NO_RECORDING}).
 */
public final class WeightStream implements AutoCloseable {
    /** Why a streamed pass is never recorded as a CUDA graph. */
    public static final String NO_RECORDING = "weights are streamed: a recorded pass would replay copies into slots whose"
            + " contents the host's schedule tracks, and would freeze one pass's slot assignment for every pass";

    /** The place of a streamed layer in {@link PreparedWeights}: its weights come from a slot when the pass reaches it. */
    record Streamed(Op.Conv2d op, int layer) implements Ops.ConvWeights {}

    private final boolean[] streamed;
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
     * Prepares {@code graph}'s weights on {@code ops} within {@code budget} bytes of convolution
     * kernels (slots included; biases and slopes stay resident on top): everything resident when
     * it fits, else the split's resident layers prepared as usual and the others staged for streaming.
     */
    static PreparedWeights prepare(Graph graph, Weights weights, Ops ops, long budget, int slotCount) {
        List<Node> convs = graph.nodes().stream().filter(n -> n.op() instanceof Op.Conv2d).toList();
        long[] bytes = new long[convs.size()];
        for (int i = 0; i < bytes.length; i++) {
            Op.Conv2d c = (Op.Conv2d) convs.get(i).op();
            bytes[i] = weights.has(c.weight()) ? ops.kernelBytes(c, weights.get(c.weight())) : 0;
        }
        int[] uses = new int[bytes.length];
        java.util.Arrays.fill(uses, 1);
        StreamSplit split = StreamSplit.choose(bytes, uses, budget, slotCount);
        if (split.streamedCount() == 0) return PreparedWeights.prepare(graph, weights, ops::prepareConv);
        boolean[] streamed = new boolean[graph.size()];
        for (int i = 0; i < bytes.length; i++) streamed[convs.get(i).id()] = !split.resident()[i];
        WeightSlots ws = ops.weightSlots(split.slots(), split.slotBytes());
        try {
            PreparedWeights p = PreparedWeights.prepare(graph, weights, (op, kernel, bias, slope) -> {
                int id = idOf(graph, op);
                if (!streamed[id]) return ops.prepareConv(op, kernel, bias, slope);
                ws.stage(id, op, kernel, bias, slope);
                return new Streamed(op, id);
            });
            p.stream = new WeightStream(graph, streamed, ws, split);
            return p;
        } catch (RuntimeException e) {
            ws.close();
            throw e;
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
        long kernels = 0;
        for (Node n : graph.nodes()) {
            if (n.op() instanceof Op.Conv2d c && weights.has(c.weight())) kernels += ops.kernelBytes(c, weights.get(c.weight()));
        }
        var plan = dev.headroom.core.plan.Planner.plan(graph, 1, tile, tile, ops.memoryModel(), true);
        // the allocator reserves whole segments: a large one for the arena, small ones for the rest
        long seg = dev.headroom.runtime.memory.CachingAllocator.LARGE_SEGMENT;
        long activations = (plan.peak() - plan.weights() + seg - 1) / seg * seg + dev.headroom.runtime.memory.CachingAllocator.SMALL_SEGMENT;
        long usable = (long) (memory.ledger().limit() * memory.thresholds().critical()) - memory.ledger().used();
        return kernels + activations <= usable ? Long.MAX_VALUE : usable - activations;
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
        };
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

    /** Starts a pass that reaches the convolutions {@code sequence} (node ids) in that order; issues its first copies. */
    void begin(int[] sequence) {
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
