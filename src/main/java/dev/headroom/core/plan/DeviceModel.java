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

    /** How the allocator rounds a request. */
    static long align(long bytes) {
        return Math.max(512, (bytes + 511) / 512 * 512);
    }
}
