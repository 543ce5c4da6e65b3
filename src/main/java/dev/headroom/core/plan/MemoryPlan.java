package dev.headroom.core.plan;

import java.util.List;

/**
 * A job's memory, planned before it runs, for one (graph, input shape, backend): every activation
 * buffer with its lifetime and place in one arena, the arena's size against the lower bound, and
 * the other terms of the predicted peak. Immutable.
 *
 * @param buffers    activation buffers (one per concatenation root), in graph order
 * @param arenaBytes the arena that holds them all
 * @param lowerBound the most activation bytes alive at any one step
 * @param weights    device bytes of the prepared weights
 * @param input      device bytes of the uploaded input
 * @param persistent bytes kept across nodes (the convolution workspace)
 * @param scratch    the largest transient any one node needs
 * @param bands      how the tail runs in row bands, or null when every node runs on whole tensors
 * @param output     device bytes of the output window tiles are blended into on the device (one tile row of
 *                   fp32 output rows and a band of samples on their way home; {@link Planner#outputWindowBytes}),
 *                   0 where the host blends
 */
public record MemoryPlan(List<Buffer> buffers, long arenaBytes, long lowerBound, long weights, long input, long persistent, long scratch,
                         Bands bands, long output) {

    /** This plan with the device's output window of {@code bytes} beside the run. */
    public MemoryPlan withOutput(long bytes) {
        return new MemoryPlan(buffers, arenaBytes, lowerBound, weights, input, persistent, scratch, bands, bytes);
    }

    /** {@link Buffer#band} of a node's scratch in the arena ({@link DeviceModel#arenaScratch}), alive at its step alone. */
    public static final int SCRATCH = -2;

    /** Node {@code id}'s scratch in the arena, or null when it has none. */
    public Buffer scratchOf(int id) {
        for (Buffer b : buffers) if (b.band() == SCRATCH && b.root() == id) return b;
        return null;
    }

    /**
     * An activation buffer: the concatenation root it holds, the band (-1 for a whole tensor), its
     * bytes and lifetime [first, last] in steps (see {@link Planner}), its offset. A node's scratch
     * ({@link #SCRATCH}) is listed here too, under the node's id.
     */
    public record Buffer(int root, int band, long bytes, int first, int last, long offset) {}

    /** Weights plus one run (arena, input, workspace, the largest transient) and the output window: the predicted peak of allocated device memory. */
    public long peak() {
        return weights + arenaBytes + input + persistent + scratch + output;
    }
}
