package dev.headroom.runtime.gpu;

import dev.headroom.runtime.DeviceBuffer;
import dev.headroom.runtime.Ops;

/**
 * A convolution's device weights that a host copy can save and bring back ({@link CudaHostCopy}):
 * the device buffers they read, and the same weights over other buffers, views into one restored
 * block, closed by a release hook instead of freeing each buffer.
 */
interface RelocatableWeights extends Ops.ConvWeights {
    /** Every device buffer these weights read (null where absent), in the order {@link #over} takes them. */
    DeviceBuffer[] buffers();

    /** The same weights over {@code views} (as {@link #buffers} orders them); closing runs {@code release}. */
    Ops.ConvWeights over(DeviceBuffer[] views, Runnable release);
}
