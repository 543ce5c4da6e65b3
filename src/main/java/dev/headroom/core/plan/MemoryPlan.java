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
 */
public record MemoryPlan(List<Buffer> buffers, long arenaBytes, long lowerBound, long weights, long input, long persistent, long scratch,
                         Bands bands) {

    /**
     * An activation buffer: the concatenation root it holds, the band (-1 for a whole tensor), its
     * bytes and lifetime [first, last] in steps (see {@link Planner}), its offset.
     */
    public record Buffer(int root, int band, long bytes, int first, int last, long offset) {}

    /** Weights plus one run (arena, input, workspace, the largest transient): the predicted peak of allocated device memory. */
    public long peak() {
        return weights + arenaBytes + input + persistent + scratch;
    }
}
