package dev.headroom.runtime.gpu;

import dev.headroom.cuda.CudaException;
import dev.headroom.cuda.Driver;
import dev.headroom.runtime.DeviceAllocator;
import dev.headroom.runtime.DeviceBuffer;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.Map;

/**
 * A stand-in until the caching allocator with budgets lands: blocks are rounded up to 512 bytes
 * and a freed block is kept on a free list for its exact size, so the repeated shapes of a tiled
 * job are served without a driver call (cuMemFree synchronises the device, and a pair costs about
 * 90 us from Java). When the driver runs out, the free lists are returned and the request retried
 * once. Reuse is safe because all work runs on one stream, in order. {@link #close} audits leaks.
 */
final class CudaAllocator implements DeviceAllocator {
    private record Block(long address, long bytes) implements DeviceBuffer {}

    private final Driver cu;
    private final Map<DeviceBuffer, Boolean> live = new IdentityHashMap<>();
    private final Map<Long, ArrayDeque<Block>> cached = new HashMap<>();
    private long allocated, cachedBytes, peak, driverCalls;

    CudaAllocator(Driver cu) {
        this.cu = cu;
    }

    @Override
    public synchronized DeviceBuffer allocate(long bytes) {
        long size = Math.max(512, (bytes + 511) & ~511L);
        ArrayDeque<Block> list = cached.get(size);
        Block b = list == null ? null : list.poll();
        if (b != null) {
            cachedBytes -= size;
        } else {
            b = new Block(fromDriver(size), size);
        }
        live.put(b, Boolean.TRUE);
        allocated += size;
        peak = Math.max(peak, allocated);
        return b;
    }

    private long fromDriver(long size) {
        driverCalls++;
        try {
            return cu.memAlloc(size);
        } catch (CudaException e) {
            if (!e.outOfMemory() || cachedBytes == 0) throw e;
            releaseCache();
            return cu.memAlloc(size);
        }
    }

    @Override
    public synchronized void free(DeviceBuffer buffer) {
        if (live.remove(buffer) == null) throw new IllegalStateException("freeing a buffer this allocator does not hold: " + buffer);
        Block b = (Block) buffer;
        allocated -= b.bytes();
        cached.computeIfAbsent(b.bytes(), k -> new ArrayDeque<>()).push(b);
        cachedBytes += b.bytes();
    }

    /** Returns every cached block to the driver. */
    synchronized void releaseCache() {
        for (ArrayDeque<Block> list : cached.values()) for (Block b : list) cu.memFree(b.address());
        cached.clear();
        cachedBytes = 0;
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
        releaseCache();
        if (live.isEmpty()) return;
        long bytes = allocated;
        int n = live.size();
        for (DeviceBuffer b : live.keySet()) cu.memFree(b.address());
        live.clear();
        allocated = 0;
        throw new IllegalStateException("device allocator closed with " + n + " live buffers (" + bytes + " bytes): a leak");
    }
}
