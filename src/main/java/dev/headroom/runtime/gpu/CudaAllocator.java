package dev.headroom.runtime.gpu;

import dev.headroom.cuda.CudaException;
import dev.headroom.cuda.Driver;
import dev.headroom.runtime.DeviceAllocator;
import dev.headroom.runtime.DeviceBuffer;
import dev.headroom.runtime.memory.CachingAllocator;
import dev.headroom.runtime.memory.MemoryStats;
import dev.headroom.runtime.memory.RawAllocator;

/**
 * Device memory for the CUDA backend: {@link CachingAllocator} over plain cuMemAlloc segments, so
 * repeated tiles make no driver call (cuMemFree synchronises the device, and an alloc/free pair
 * costs about 90 us from Java). Reuse is safe because all work runs on one stream, in order.
 * {@link #close} returns every segment and names leaked bytes.
 */
final class CudaAllocator implements DeviceAllocator {
    private record Buffer(CachingAllocator.Block block) implements DeviceBuffer {
        @Override
        public long address() {
            return block.address();
        }

        @Override
        public long bytes() {
            return block.size();
        }
    }

    private final CachingAllocator pool;

    CudaAllocator(Driver cu) {
        this.pool = new CachingAllocator(new RawAllocator() {
            @Override
            public long allocate(long bytes) {
                try {
                    return cu.memAlloc(bytes);
                } catch (CudaException e) {
                    if (e.outOfMemory()) return 0;
                    throw e;
                }
            }

            @Override
            public void free(long address, long bytes) {
                cu.memFree(address);
            }
        });
    }

    @Override
    public DeviceBuffer allocate(long bytes) {
        return new Buffer(pool.allocate(bytes));
    }

    @Override
    public void free(DeviceBuffer buffer) {
        pool.free(((Buffer) buffer).block());
    }

    public MemoryStats stats() {
        return pool.stats();
    }

    @Override
    public long allocatedBytes() {
        return pool.stats().allocated();
    }

    @Override
    public long peakBytes() {
        return pool.stats().allocatedPeak();
    }

    @Override
    public long driverAllocations() {
        return pool.stats().driverAllocations();
    }

    @Override
    public void close() {
        MemoryStats s = pool.stats();
        var leaked = pool.liveBlocks();
        for (CachingAllocator.Block b : leaked) pool.free(b);
        pool.emptyCache();
        if (!leaked.isEmpty()) {
            throw new IllegalStateException("device allocator closed with " + leaked.size() + " live buffers (" + s.allocated() + " bytes): a leak");
        }
    }
}
