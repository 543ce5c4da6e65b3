package dev.headroom.runtime.gpu;

import dev.headroom.cuda.Driver;
import dev.headroom.runtime.DeviceAllocator;
import dev.headroom.runtime.DeviceBuffer;
import java.util.IdentityHashMap;
import java.util.Map;

/**
 * The simple allocator: one cuMemAlloc per request, one cuMemFree per release, with counts. It is
 * the stand-in the caching allocator will replace; {@link #close} audits for leaks.
 */
final class CudaAllocator implements DeviceAllocator {
    private record Block(long address, long bytes) implements DeviceBuffer {}

    private final Driver cu;
    private final Map<DeviceBuffer, Boolean> live = new IdentityHashMap<>();
    private long allocated, peak, driverCalls;

    CudaAllocator(Driver cu) {
        this.cu = cu;
    }

    @Override
    public synchronized DeviceBuffer allocate(long bytes) {
        long size = Math.max(bytes, 256);
        long ptr = cu.memAlloc(size);
        driverCalls++;
        Block b = new Block(ptr, size);
        live.put(b, Boolean.TRUE);
        allocated += size;
        peak = Math.max(peak, allocated);
        return b;
    }

    @Override
    public synchronized void free(DeviceBuffer buffer) {
        if (live.remove(buffer) == null) throw new IllegalStateException("freeing a buffer this allocator does not hold: " + buffer);
        cu.memFree(buffer.address());
        allocated -= buffer.bytes();
    }

    @Override
    public synchronized long allocatedBytes() {
        return allocated;
    }

    @Override
    public synchronized long peakBytes() {
        return peak;
    }

    @Override
    public synchronized long driverAllocations() {
        return driverCalls;
    }

    @Override
    public synchronized void close() {
        if (live.isEmpty()) return;
        long bytes = allocated;
        int n = live.size();
        for (DeviceBuffer b : live.keySet()) cu.memFree(b.address());
        live.clear();
        allocated = 0;
        throw new IllegalStateException("device allocator closed with " + n + " live buffers (" + bytes + " bytes): a leak");
    }
}
