package dev.headroom.runtime.cpu;

import dev.headroom.runtime.memory.RawAllocator;
import java.util.Map;
import java.util.TreeMap;

/**
 * The CPU backend's "driver": segments are float arrays on the Java heap, named by made-up
 * addresses so that the caching allocator can treat them like device memory (best fit, split,
 * merge, budgets, traces). A block's values are the array of its segment from element
 * (address - segment address) / 4. An exhausted heap is reported as "no room", so the allocator
 * flushes its cache and retries as it would on a GPU.
 */
final class HeapSegments implements RawAllocator {
    private static final long SPACING = 1L << 36;    // addresses of consecutive segments never meet
    private final TreeMap<Long, float[]> segments = new TreeMap<>();
    private long next = SPACING;

    @Override
    public synchronized long allocate(long bytes) {
        if (bytes / Float.BYTES > Integer.MAX_VALUE - 16) return 0;
        float[] a;
        try {
            a = new float[(int) (bytes / Float.BYTES)];
        } catch (OutOfMemoryError e) {
            return 0;
        }
        long addr = next;
        next += Math.max(SPACING, bytes + SPACING);
        segments.put(addr, a);
        return addr;
    }

    @Override
    public synchronized void free(long address, long bytes) {
        if (segments.remove(address) == null) throw new IllegalStateException("no heap segment at " + address);
    }

    /** The segment that holds {@code address}. */
    synchronized Map.Entry<Long, float[]> at(long address) {
        Map.Entry<Long, float[]> e = segments.floorEntry(address);
        if (e == null || address >= e.getKey() + (long) e.getValue().length * Float.BYTES) throw new IllegalStateException("address " + address + " is in no heap segment");
        return e;
    }
}
