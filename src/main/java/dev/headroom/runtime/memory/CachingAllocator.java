package dev.headroom.runtime.memory;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * The caching allocator, after PyTorch's: requests are served from segments obtained from a
 * {@link RawAllocator}, so the steady state of a repeated job makes no driver call.
 *
 * <p>The algorithm:
 * <ol>
 *   <li>Round the request up to 512 bytes. Requests up to 1 MiB come from the small pool, whose
 *       segments are 2 MiB; larger ones from the large pool, whose segments are 20 MiB for requests
 *       up to 10 MiB and the request rounded up to 2 MiB above that.</li>
 *   <li>Best fit: the smallest free block of the pool that holds the request (ties: lowest
 *       address). A block much larger than the request is split; the remainder stays free. A large
 *       block is only split for requests of the large pool, so small requests cannot fragment it.</li>
 *   <li>No fit: a new segment from the driver. If the driver has no room, every fully free segment
 *       is returned to it and the request retried once; then {@link OutOfMemory} with the numbers.</li>
 *   <li>Free: the block rejoins its free neighbours in the same segment, so a segment whose blocks
 *       are all free is one free block again, ready to be returned by {@link #emptyCache}.</li>
 * </ol>
 * Not thread-safe by itself: one device, one owner, synchronised methods.
 */
public final class CachingAllocator {
    public static final long SMALL_LIMIT = 1L << 20, SMALL_SEGMENT = 2L << 20, LARGE_SEGMENT = 20L << 20;
    private static final long ROUND = 512, MIN_SPLIT_SMALL = 512, MIN_SPLIT_LARGE = 1L << 20;

    /** A request that could not be met even after the cache was flushed; the message carries the numbers. */
    public static final class OutOfMemory extends RuntimeException {
        public final long requested;
        public final MemoryStats stats;

        OutOfMemory(long requested, MemoryStats s) {
            super(String.format("out of device memory: requested %d bytes; allocated %d, reserved %d (of which %d free inside segments in use), "
                    + "%d segments", requested, s.allocated(), s.reserved(), s.inactiveSplit(), s.segments()));
            this.requested = requested;
            this.stats = s;
        }
    }

    /** A block handed out: its address and rounded size. */
    public static final class Block {
        final Segment segment;
        final long address;
        long size;
        boolean free;
        Block prev, next;

        Block(Segment segment, long address, long size) {
            this.segment = segment;
            this.address = address;
            this.size = size;
        }

        public long address() {
            return address;
        }

        public long size() {
            return size;
        }
    }

    private record Segment(long address, long size, boolean small) {}

    private static final Comparator<Block> BY_SIZE = Comparator.<Block>comparingLong(b -> b.size).thenComparingLong(b -> b.address);

    private final RawAllocator raw;
    private final TreeSet<Block> smallFree = new TreeSet<>(BY_SIZE), largeFree = new TreeSet<>(BY_SIZE);
    private final Map<Long, Block> live = new HashMap<>();
    private final List<Segment> segments = new ArrayList<>();
    private long allocated, allocatedPeak, reserved, reservedPeak, driverAllocations, driverFrees, flushes, failures;

    public CachingAllocator(RawAllocator raw) {
        this.raw = raw;
    }

    public static long round(long bytes) {
        return Math.max(ROUND, (bytes + ROUND - 1) / ROUND * ROUND);
    }

    public synchronized Block allocate(long bytes) {
        if (bytes < 0) throw new IllegalArgumentException("negative allocation " + bytes);
        long size = round(bytes);
        boolean small = size <= SMALL_LIMIT;
        TreeSet<Block> pool = small ? smallFree : largeFree;
        Block b = bestFit(pool, size);
        if (b == null) {
            Segment s = grow(size, small);
            if (s == null) {
                failures++;
                throw new OutOfMemory(size, stats());
            }
            b = new Block(s, s.address, s.size);
        } else {
            pool.remove(b);
        }
        split(b, size, pool, small);
        b.free = false;
        live.put(b.address, b);
        allocated += b.size;
        allocatedPeak = Math.max(allocatedPeak, allocated);
        return b;
    }

    private static Block bestFit(TreeSet<Block> pool, long size) {
        Block probe = new Block(null, Long.MIN_VALUE, size);
        return pool.ceiling(probe);
    }

    private Segment grow(long size, boolean small) {
        long segSize = small ? SMALL_SEGMENT : size <= 10L << 20 ? LARGE_SEGMENT : (size + (2L << 20) - 1) / (2L << 20) * (2L << 20);
        long addr = raw.allocate(segSize);
        driverAllocations++;
        if (addr == 0) {
            emptyCache();
            flushes++;
            addr = raw.allocate(segSize);
            driverAllocations++;
            if (addr == 0) return null;
        }
        Segment s = new Segment(addr, segSize, small);
        segments.add(s);
        reserved += segSize;
        reservedPeak = Math.max(reservedPeak, reserved);
        return s;
    }

    /** Cuts {@code b} down to {@code size} when the rest is worth keeping; the rest joins the free pool. */
    private static void split(Block b, long size, TreeSet<Block> pool, boolean small) {
        long rest = b.size - size;
        if (rest < (small ? MIN_SPLIT_SMALL : MIN_SPLIT_LARGE)) return;
        Block r = new Block(b.segment, b.address + size, rest);
        r.free = true;
        r.prev = b;
        r.next = b.next;
        if (b.next != null) b.next.prev = r;
        b.next = r;
        b.size = size;
        pool.add(r);
    }

    public synchronized void free(Block b) {
        if (live.remove(b.address) != b) throw new IllegalStateException("freeing a block that is not live: address " + b.address);
        allocated -= b.size;
        TreeSet<Block> pool = b.segment.small ? smallFree : largeFree;
        b.free = true;
        // merge with free neighbours of the same segment
        if (b.prev != null && b.prev.free) {
            Block p = b.prev;
            pool.remove(p);
            p.size += b.size;
            p.next = b.next;
            if (b.next != null) b.next.prev = p;
            b = p;
        }
        if (b.next != null && b.next.free) {
            Block n = b.next;
            pool.remove(n);
            b.size += n.size;
            b.next = n.next;
            if (n.next != null) n.next.prev = b;
        }
        pool.add(b);
    }

    /** Returns every fully free segment to the driver. */
    public synchronized void emptyCache() {
        for (TreeSet<Block> pool : List.of(smallFree, largeFree)) {
            for (Block b : new ArrayList<>(pool)) {
                if (b.prev == null && b.next == null && b.size == b.segment.size) {
                    pool.remove(b);
                    segments.remove(b.segment);
                    raw.free(b.segment.address, b.segment.size);
                    driverFrees++;
                    reserved -= b.segment.size;
                }
            }
        }
    }

    public synchronized MemoryStats stats() {
        long inactiveSplit = 0;
        for (TreeSet<Block> pool : List.of(smallFree, largeFree)) {
            for (Block b : pool) if (b.prev != null || b.next != null) inactiveSplit += b.size;
        }
        return new MemoryStats(allocated, allocatedPeak, reserved, reservedPeak, inactiveSplit, segments.size(),
                driverAllocations, driverFrees, flushes, failures);
    }

    /** Live blocks, for audits and tests. */
    public synchronized List<Block> liveBlocks() {
        return List.copyOf(live.values());
    }
}
