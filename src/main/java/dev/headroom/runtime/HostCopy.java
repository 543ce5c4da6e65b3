package dev.headroom.runtime;

/**
 * A model's prepared convolution weights copied into host memory in a device's own layout
 * (pinned on a GPU, so copying them back runs at the bus's full rate, about 55 GB/s on an H200),
 * from which {@link #restore} makes device weights again by copying alone: no file read, no
 * reordering, no precision conversion. The residency manager keeps one per model within its host
 * cache ({@code --host-cache}), so reloading an evicted model costs a copy, not a load. Made by
 * {@link Device#copyToHost}; owned by one object; closing frees the host memory.
 */
public interface HostCopy extends AutoCloseable {
    /** Bytes of host memory held (on the CPU, the weights' own arrays, shared with the device copy). */
    long bytes();

    /**
     * The weights on the device again, indexed as given to {@link Device#copyToHost} (null where
     * that was null), charged to the ledger node the calling thread charges to
     * ({@link dev.headroom.runtime.memory.DeviceMemory#chargeTo}); complete when this returns, so
     * any session may read them. The copy stays valid for further restores.
     */
    Ops.ConvWeights[] restore();

    @Override
    void close();
}
