package dev.headroom.core.plan;

import dev.headroom.core.graph.Node;
import dev.headroom.core.graph.Op;

/**
 * What a backend allocates besides the planned activations, so that a plan can predict a job's
 * whole peak without running it: each backend states its own (runtime.cpu, runtime.gpu).
 */
public interface DeviceModel {
    /** Bytes per activation element. */
    int elementBytes();

    /** Device bytes of one convolution's prepared weights (0 when weights stay in host memory). */
    long weightBytes(Op.Conv2d conv);

    /** Bytes the upload of an (n, h, w, c) input takes on the device for the whole run (0 if none). */
    long inputBytes(int n, int h, int w, int c);

    /**
     * Transient bytes one node needs while it runs, besides its input and output buffers.
     *
     * @param in        (n, h, w, c) of the node's first input
     * @param out       (n, h, w, c) of its output
     * @param inDense   whether the input is a whole buffer rather than a channel slice of one
     * @param outDense  the same for the output
     */
    long scratch(Node node, int[] in, int[] out, boolean inDense, boolean outDense);

    /** Bytes kept from the first run on, whatever the shape: e.g. the convolution workspace (the largest any node needs). */
    long persistent(Node node, int[] in, int[] out);

    /**
     * Sizes of scratch, smallest first, that a node can use inside the arena beside its buffers
     * (attention's chunks of queries on CUDA: larger chunks run faster): the planner gives it the
     * largest that does not make the plan's peak larger than with the node's {@link #persistent}
     * bytes, and then no longer counts those. None by default.
     */
    default long[] arenaScratch(Node node, int[] in, int[] out) {
        return new long[0];
    }

    /**
     * This model for a graph whose kernels are held as in {@code weights} (stored 16-bit, or int8,
     * fp8, NF4): the same by default, for a device that converts every kernel to its compute
     * precision when it loads it; a device that keeps kernels as stored says what they take.
     */
    default DeviceModel holding(dev.headroom.core.Weights weights) {
        return this;
    }

    /** This model with each convolution's weight bytes from {@code bytes} instead. */
    default DeviceModel withWeightBytes(java.util.function.ToLongFunction<Op.Conv2d> bytes) {
        DeviceModel base = this;
        return new DeviceModel() {
            public int elementBytes() { return base.elementBytes(); }
            public long weightBytes(Op.Conv2d conv) { return bytes.applyAsLong(conv); }
            public long inputBytes(int n, int h, int w, int c) { return base.inputBytes(n, h, w, c); }
            public long scratch(Node node, int[] in, int[] out, boolean inDense, boolean outDense) { return base.scratch(node, in, out, inDense, outDense); }
            public long persistent(Node node, int[] in, int[] out) { return base.persistent(node, in, out); }
            public long[] arenaScratch(Node node, int[] in, int[] out) { return base.arenaScratch(node, in, out); }
        };
    }

    /** How the allocator rounds a request. */
    static long align(long bytes) {
        return Math.max(512, (bytes + 511) / 512 * 512);
    }
}
