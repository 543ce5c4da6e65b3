package dev.headroom.runtime.gpu;

import dev.headroom.core.graph.Op;
import dev.headroom.runtime.DeviceBuffer;
import dev.headroom.runtime.memory.DeviceMemory;

/**
 * A convolution whose kernel stays compact on the device ({@link CompactKernel}'s blob at
 * {@code blob}): a session expands it into its compute precision just before each use
 * ({@link WeightExpander}). Bias and PReLU slopes are fp32 as for dense weights. Closing frees the
 * device buffers it owns: all three when the device prepared it, none for a view of a streaming
 * slot ({@code owned} false).
 */
final class CompactWeights implements RelocatableWeights {
    final CompactKernel layout;
    final DeviceBuffer blob, bias, slope;
    private final DeviceMemory alloc;
    private final boolean owned;
    /** For weights that are views into one restored block (a host copy): what closing does instead. */
    private final Runnable release;

    CompactWeights(CompactKernel layout, DeviceBuffer blob, DeviceBuffer bias, DeviceBuffer slope, DeviceMemory alloc, boolean owned) {
        this(layout, blob, bias, slope, alloc, owned, null);
    }

    private CompactWeights(CompactKernel layout, DeviceBuffer blob, DeviceBuffer bias, DeviceBuffer slope, DeviceMemory alloc, boolean owned,
                           Runnable release) {
        this.layout = layout;
        this.blob = blob;
        this.bias = bias;
        this.slope = slope;
        this.alloc = alloc;
        this.owned = owned;
        this.release = release;
    }

    @Override
    public DeviceBuffer[] buffers() {
        return new DeviceBuffer[] {blob, bias, slope};
    }

    @Override
    public CompactWeights over(DeviceBuffer[] b, Runnable release) {
        return new CompactWeights(layout, b[0], b[1], b[2], alloc, false, release);
    }

    @Override
    public Op.Conv2d op() {
        return layout.op();
    }

    @Override
    public void close() {
        if (release != null) release.run();
        if (!owned) return;
        alloc.free(blob);
        if (bias != null) alloc.free(bias);
        if (slope != null) alloc.free(slope);
    }
}
