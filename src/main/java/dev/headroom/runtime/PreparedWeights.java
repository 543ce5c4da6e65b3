package dev.headroom.runtime;

import dev.headroom.core.TensorData;
import dev.headroom.core.Weights;
import dev.headroom.core.graph.Graph;
import dev.headroom.core.graph.Node;
import dev.headroom.core.graph.Op;

/**
 * A graph's weights in a backend's layout: each convolution's {@link Ops.ConvWeights} and each
 * PReLU activation's slopes, by node id, checked against the graph once. A {@link GraphRunner}
 * owns the ones it prepares itself, or borrows ones shared through the residency manager
 * ({@link Residency}); closing frees the device copies.
 */
public final class PreparedWeights implements AutoCloseable {
    final Ops.ConvWeights[] conv;
    final float[][] slope;
    /** Per node: the float parameters of ops without prepared weights (GroupNorm's gamma and beta; a strided convolution's kernel and bias). */
    final float[][][] params;
    /** Set when some convolutions are streamed rather than resident ({@link #streamed}); null otherwise. */
    WeightStream stream;
    private boolean closed;

    private PreparedWeights(int size) {
        conv = new Ops.ConvWeights[size];
        slope = new float[size][];
        params = new float[size][][];
    }

    /**
     * Checks {@code weights} against {@code graph} and prepares them with {@code prepare}
     * (a session's or a device's prepareConv); what was prepared is freed again if one fails.
     */
    public static PreparedWeights prepare(Graph graph, Weights weights, Preparer prepare) {
        PreparedWeights p = new PreparedWeights(graph.size());
        try {
            for (Node n : graph.nodes()) {
                switch (n.op()) {
                    case Op.Conv2d c -> {
                        TensorData k = tensor(weights, c.weight(), n, c.kh(), c.kw(), c.cin(), c.cout());
                        float[] b = c.bias() == null ? null : expect(weights, c.bias(), n, c.cout());
                        float[] s = c.act().preluWeight() == null ? null : expect(weights, c.act().preluWeight(), n, c.cout());
                        p.conv[n.id()] = prepare.conv(c, k, b, s);
                    }
                    case Op.Activation a when a.act().preluWeight() != null ->
                            p.slope[n.id()] = expect(weights, a.act().preluWeight(), n, graph.channels(n.input(0)));
                    case Op.GroupNorm g -> p.params[n.id()] = new float[][] {
                            expect(weights, g.weight(), n, graph.channels(n.id())), expect(weights, g.bias(), n, graph.channels(n.id()))};
                    case Op.StridedConv c -> p.params[n.id()] = new float[][] {
                            expect(weights, c.weight(), n, c.k(), c.k(), c.cin(), c.cout()), c.bias() == null ? null : expect(weights, c.bias(), n, c.cout())};
                    default -> { }
                }
            }
        } catch (RuntimeException e) {
            p.close();
            throw e;
        }
        return p;
    }

    /**
     * As {@link #prepare} on {@code ops}, within {@code budget} bytes of convolution kernels on the
     * device: where they do not all fit, a fixed resident set is prepared and the other layers are
     * streamed through {@code slots} prefetch slots ({@link WeightStream}); the slots are charged
     * to the ledger now. Biases and PReLU slopes stay resident, outside the budget.
     */
    public static PreparedWeights streamed(Graph graph, Weights weights, Ops ops, long budget, int slots) {
        return WeightStream.prepare(graph, weights, ops, budget, slots);
    }

    /**
     * As {@link #streamed(Graph, Weights, Ops, long, int)} on {@code device} for every session of
     * {@code precision} (a model shared through the residency manager): the resident layers as
     * {@link Device#prepareConv} prepares them, the slots from {@link Device#weightSlots}; each
     * pass binds the slots to its session.
     */
    public static PreparedWeights streamed(Graph graph, Weights weights, Device device, dev.headroom.core.Precision precision, long budget, int slots) {
        return WeightStream.prepare(graph, weights, WeightStream.Target.of(device, precision), budget, slots);
    }

    /** The weight stream, when some convolutions are streamed; null when all are resident. */
    public WeightStream stream() {
        return stream;
    }

    /**
     * A host copy of these weights for the residency manager's host cache: the convolutions
     * through {@link Device#copyToHost} (pinned, in the device's layout), the host-side parameters
     * (PReLU slopes, GroupNorm, strided convolutions: read-only arrays) by reference. Streamed
     * weights copy their resident layers so, and keep the staged layers they stream from (already
     * in host memory: one more reference, no copy). Null when the device could not make one.
     */
    public Host toHost(Device device) {
        Ops.ConvWeights[] resident = conv;
        if (stream != null) {
            resident = conv.clone();
            for (int i = 0; i < resident.length; i++) if (resident[i] instanceof WeightStream.Streamed) resident[i] = null;
        }
        HostCopy c = device.copyToHost(resident);
        if (c == null) return null;
        return new Host(c, slope, params, stream == null ? null : stream.toHost());
    }

    /**
     * Prepared weights kept in host memory ({@link #toHost}); {@link #restore} brings them back by
     * copying. {@code streamed} is null unless the weights were streamed.
     */
    public record Host(HostCopy conv, float[][] slope, float[][][] params, WeightStream.HostPart streamed) implements AutoCloseable {
        /** Host bytes held: the convolutions' copy and staged layers (the small host-side parameters are not counted). */
        public long bytes() {
            return conv.bytes() + (streamed == null ? 0 : streamed.bytes());
        }

        /** The weights again, charged to the node the calling thread charges to (see {@link HostCopy#restore}); streamed ones get new slots. */
        public PreparedWeights restore() {
            PreparedWeights p = new PreparedWeights(slope.length);
            Ops.ConvWeights[] c = conv.restore();
            System.arraycopy(c, 0, p.conv, 0, c.length);
            System.arraycopy(slope, 0, p.slope, 0, slope.length);
            System.arraycopy(params, 0, p.params, 0, params.length);
            if (streamed != null) {
                try {
                    p.stream = streamed.restore(p.conv);
                } catch (RuntimeException e) {
                    p.close();
                    throw e;
                }
            }
            return p;
        }

        @Override
        public void close() {
            try {
                conv.close();
            } finally {
                if (streamed != null) streamed.close();
            }
        }
    }

    /** Prepares one convolution's weights (see {@link Ops#prepareConv(Op.Conv2d, TensorData, float[], float[])}): the kernel in its stored precision. */
    public interface Preparer {
        Ops.ConvWeights conv(Op.Conv2d op, TensorData kernel, float[] bias, float[] slope);
    }

    private static float[] expect(Weights weights, String name, Node node, int... shape) {
        return tensor(weights, name, node, shape).data();
    }

    private static TensorData tensor(Weights weights, String name, Node node, int... shape) {
        if (!weights.has(name)) {
            throw new IllegalArgumentException("layer '" + node.name() + "' needs weight '" + name + "', which the model file does not have");
        }
        TensorData t = weights.get(name);
        if (t.count() != product(shape)) {
            throw new IllegalArgumentException("layer '" + node.name() + "': weight '" + name + "' has shape " + t.shapeString()
                    + ", expected " + java.util.Arrays.toString(shape));
        }
        return t;
    }

    private static long product(int[] s) {
        long p = 1;
        for (int d : s) p *= d;
        return p;
    }

    /** Frees every device copy (once). */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        try {
            for (Ops.ConvWeights w : conv) if (w != null && !(w instanceof WeightStream.Streamed)) w.close();
        } finally {
            if (stream != null) stream.close();
        }
    }
}
