package dev.headroom.runtime.memory;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The caching allocator, after PyTorch's: requests are served from segments the driver gave once,
 * so the steady state of a repeated job makes no driver call.
 *
 * <p>The algorithm:
 * <ol>
 *   <li>Round the request up to 512 bytes. Requests up to 1 MiB come from the small pool, whose
 *       segments are 2 MiB; larger ones from the large pool. Each stream has its own pools.</li>
 *   <li>Best fit: the smallest free block of the pool that holds the request (ties: lowest
 *       address). A block much larger than the request is split; the remainder stays free. A large
 *       block is only split for requests of the large pool, so small requests cannot fragment it.</li>
 *   <li>No fit, plain mode: a new segment from the {@link RawAllocator} (20 MiB for requests up to
 *       10 MiB, else the request rounded up to 2 MiB). Expandable mode ({@link VirtualMemory}): the
 *       large pool of a stream is one reserved address range, initially one free block; the chosen
 *       block's missing pages are mapped, so the pool grows in place and stays contiguous.</li>
 *   <li>If the driver has no room: flush (return fully free segments, unmap pages no live block
 *       touches) and retry once; then {@link OutOfMemory} with the numbers.</li>
 *   <li>Free: the block rejoins its free neighbours, so a segment whose blocks are all free is one
 *       free block again. A block used on other streams ({@link #recordStream}) only becomes free
 *       once an event recorded on each of them at free time has completed.</li>
 * </ol>
 * One device, one owner: methods are synchronised; the hot path makes no driver call.
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

    /** Told when the driver backs more or fewer bytes (segment allocated or freed, pages mapped or unmapped). */
    public interface Observer {
        void reservedChanged(long address, long bytes, boolean grew);
    }

    /** A block handed out: its address, rounded size and the stream it belongs to. */
    public static final class Block {
        final Segment segment;
        final long address;
        long size;
        boolean free;
        Block prev, next;
        final long stream;
        Set<Long> uses;          // other streams it was used on, or null
        int pendingEvents;

        Block(Segment segment, long address, long size, long stream) {
            this.segment = segment;
            this.address = address;
            this.size = size;
            this.stream = stream;
        }

        public long address() {
            return address;
        }

        public long size() {
            return size;
        }

        public long stream() {
            return stream;
        }

        /** Start of the segment this block lies in. */
        public long segmentAddress() {
            return segment.address;
        }
    }

    /** Driver memory: a plain segment, or an expandable address range with a bitmap of mapped pages. */
    static final class Segment {
        final long address, size;
        final boolean small;
        final BitSet mapped;     // expandable only
        long mappedBytes;

        Segment(long address, long size, boolean small, boolean expandable) {
            this.address = address;
            this.size = size;
            this.small = small;
            this.mapped = expandable ? new BitSet() : null;
        }

        boolean expandable() {
            return mapped != null;
        }
    }

    private static final class Pools {
        final TreeSet<Block> small = new TreeSet<>(BY_SIZE), large = new TreeSet<>(BY_SIZE);
        Segment expandable;
    }

    private record Pending(long event, Block block) {}

    private static final Comparator<Block> BY_SIZE = Comparator.<Block>comparingLong(b -> b.size).thenComparingLong(b -> b.address);

    private final RawAllocator raw;
    private final VirtualMemory vm;
    private final long addressSpace;
    private final StreamEvents events;
    private Observer observer = (a, b, g) -> { };
    private final Map<Long, Pools> pools = new HashMap<>();
    private final Map<Long, Block> live = new HashMap<>();
    private final List<Segment> segments = new ArrayList<>();
    private final List<Pending> pending = new ArrayList<>();
    private long allocated, allocatedPeak, pendingBytes, reserved, reservedPeak, driverAllocations, driverFrees, flushes, failures;

    /** Plain segments, one stream. */
    public CachingAllocator(RawAllocator raw) {
        this(raw, null, 0, StreamEvents.SINGLE_STREAM);
    }

    /**
     * @param raw          small-pool segments (and large ones when {@code vm} is null)
     * @param vm           expandable large pools, or null for plain segments
     * @param addressSpace bytes of address space each stream's expandable pool reserves (the device size is plenty)
     */
    public CachingAllocator(RawAllocator raw, VirtualMemory vm, long addressSpace, StreamEvents events) {
        this.raw = raw;
        this.vm = vm;
        this.addressSpace = vm == null ? 0 : (addressSpace + vm.granularity() - 1) / vm.granularity() * vm.granularity();
        this.events = events;
    }

    public synchronized void observe(Observer o) {
        this.observer = o;
    }

    public static long round(long bytes) {
        return Math.max(ROUND, (bytes + ROUND - 1) / ROUND * ROUND);
    }

    public Block allocate(long bytes) {
        return allocate(bytes, 0);
    }

    public synchronized Block allocate(long bytes, long stream) {
        if (bytes < 0) throw new IllegalArgumentException("negative allocation " + bytes);
        processEvents();
        long size = round(bytes);
        boolean small = size <= SMALL_LIMIT;
        Pools p = pools.computeIfAbsent(stream, s -> new Pools());
        TreeSet<Block> pool = small ? p.small : p.large;
        Block b = small || vm == null ? takePlain(pool, size, small, stream) : takeExpandable(p, size, stream);
        if (b == null) {
            failures++;
            throw new OutOfMemory(size, stats());
        }
        split(b, size, pool, small);
        b.free = false;
        live.put(b.address, b);
        allocated += b.size;
        allocatedPeak = Math.max(allocatedPeak, allocated);
        return b;
    }

    /**
     * Bytes the driver must newly back for a request of {@code bytes} that no cached block can
     * take: a whole new segment in plain mode (or for the small pool), else the request rounded
     * up to pages. The ladder asks listeners to free this much, not just the request.
     */
    public long growthFor(long bytes) {
        long size = round(bytes);
        boolean small = size <= SMALL_LIMIT;
        if (small || vm == null) return small ? SMALL_SEGMENT : size <= 10L << 20 ? LARGE_SEGMENT : (size + (2L << 20) - 1) / (2L << 20) * (2L << 20);
        return (size + vm.granularity() - 1) / vm.granularity() * vm.granularity();
    }

    private Block takePlain(TreeSet<Block> pool, long size, boolean small, long stream) {
        Block b = bestFit(pool, size);
        if (b != null) {
            pool.remove(b);
            return b;
        }
        long segSize = small ? SMALL_SEGMENT : size <= 10L << 20 ? LARGE_SEGMENT : (size + (2L << 20) - 1) / (2L << 20) * (2L << 20);
        long addr = raw.allocate(segSize);
        driverAllocations++;
        if (addr == 0) {
            flush();
            addr = raw.allocate(segSize);
            driverAllocations++;
            if (addr == 0) return null;
        }
        Segment s = new Segment(addr, segSize, small, false);
        segments.add(s);
        addReserved(addr, segSize);
        return new Block(s, s.address, s.size, stream);
    }

    private Block takeExpandable(Pools p, long size, long stream) {
        if (p.expandable == null) {
            long addr = vm.reserve(addressSpace);
            if (addr == 0) return null;
            p.expandable = new Segment(addr, addressSpace, false, true);
            segments.add(p.expandable);
            Block whole = new Block(p.expandable, addr, addressSpace, stream);
            whole.free = true;
            p.large.add(whole);
        }
        Block b = bestFit(p.large, size);
        if (b == null) return null;       // the address space is used up
        if (!mapPages(b.segment, b.address, b.address + kept(b, size))) {
            flush();
            b = bestFit(p.large, size);
            if (b == null || !mapPages(b.segment, b.address, b.address + kept(b, size))) return null;
        }
        p.large.remove(b);
        return b;
    }

    /** What {@link #split} leaves of large block {@code b} for a request of {@code size}. */
    private static long kept(Block b, long size) {
        return b.size - size < MIN_SPLIT_LARGE ? b.size : size;
    }

    /** Maps every unmapped page of [from, to) in runs; false when the device refused one. */
    private boolean mapPages(Segment s, long from, long to) {
        long page = vm.granularity();
        int first = (int) ((from - s.address) / page), last = (int) ((to - s.address + page - 1) / page);
        for (int i = s.mapped.nextClearBit(first); i < last; i = s.mapped.nextClearBit(i)) {
            int end = Math.min(last, s.mapped.nextSetBit(i) < 0 ? last : s.mapped.nextSetBit(i));
            long addr = s.address + i * page, bytes = (end - i) * page;
            driverAllocations++;
            if (!vm.map(addr, bytes)) return false;
            s.mapped.set(i, end);
            s.mappedBytes += bytes;
            addReserved(addr, bytes);
            i = end;
        }
        return true;
    }

    private void addReserved(long address, long bytes) {
        reserved += bytes;
        reservedPeak = Math.max(reservedPeak, reserved);
        observer.reservedChanged(address, bytes, true);
    }

    private void dropReserved(long address, long bytes) {
        reserved -= bytes;
        driverFrees++;
        observer.reservedChanged(address, bytes, false);
    }

    private static Block bestFit(TreeSet<Block> pool, long size) {
        return pool.ceiling(new Block(null, Long.MIN_VALUE, size, 0));
    }

    /** Cuts {@code b} down to {@code size} when the rest is worth keeping; the rest joins the free pool. */
    private static void split(Block b, long size, TreeSet<Block> pool, boolean small) {
        long rest = b.size - size;
        if (rest < (small ? MIN_SPLIT_SMALL : MIN_SPLIT_LARGE)) return;
        Block r = new Block(b.segment, b.address + size, rest, b.stream);
        r.free = true;
        r.prev = b;
        r.next = b.next;
        if (b.next != null) b.next.prev = r;
        b.next = r;
        b.size = size;
        pool.add(r);
    }

    /** Notes that {@code b} is used by work on {@code stream}, so freeing it must wait for that work. */
    public synchronized void recordStream(Block b, long stream) {
        if (b.free) throw new IllegalStateException("recordStream on a free block at " + b.address);
        if (stream == b.stream) return;
        if (b.uses == null) b.uses = new HashSet<>();
        b.uses.add(stream);
    }

    public synchronized void free(Block b) {
        if (live.remove(b.address) != b) throw new IllegalStateException("freeing a block that is not live: address " + b.address);
        allocated -= b.size;
        if (b.uses != null && !b.uses.isEmpty()) {
            for (long s : b.uses) pending.add(new Pending(events.record(s), b));
            b.pendingEvents = b.uses.size();
            b.uses = null;
            pendingBytes += b.size;
            return;
        }
        release(b);
    }

    /** Frees blocks whose other-stream events have completed. */
    private void processEvents() {
        for (Iterator<Pending> it = pending.iterator(); it.hasNext(); ) {
            Pending p = it.next();
            if (!events.done(p.event)) continue;
            events.destroy(p.event);
            it.remove();
            if (--p.block.pendingEvents == 0) {
                pendingBytes -= p.block.size;
                release(p.block);
            }
        }
    }

    private void release(Block b) {
        TreeSet<Block> pool = b.segment.small ? pools.get(b.stream).small : pools.get(b.stream).large;
        b.free = true;
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

    /** Returns every fully free plain segment to the driver and unmaps every page no live block touches. */
    public synchronized void emptyCache() {
        processEvents();
        for (Map.Entry<Long, Pools> e : pools.entrySet()) {
            Pools p = e.getValue();
            // a block goes back to its pool when its free is issued; its stream's queued work may
            // still use it, so that stream (that one alone) finishes before its memory goes
            if (!p.small.isEmpty() || !p.large.isEmpty()) events.synchronize(e.getKey());
            releaseCached(p);
        }
    }

    /** Unmaps the free pages of expandable segments in {@code p} and frees its wholly free plain segments. */
    private void releaseCached(Pools p) {
        for (TreeSet<Block> pool : List.of(p.small, p.large)) {
            for (Block b : new ArrayList<>(pool)) {
                if (b.segment.expandable()) {
                    unmapInside(b);
                } else if (b.prev == null && b.next == null && b.size == b.segment.size) {
                    pool.remove(b);
                    segments.remove(b.segment);
                    raw.free(b.segment.address, b.segment.size);
                    dropReserved(b.segment.address, b.segment.size);
                }
            }
        }
    }

    /**
     * Gives back the cached memory of {@code stream}'s pools and forgets them, when the stream is
     * about to be destroyed (a session closing; the caller has waited for its work). A pool that
     * still has live blocks is kept; its owner's audit names them.
     */
    public synchronized void retire(long stream) {
        processEvents();
        Pools p = pools.get(stream);
        if (p == null) return;
        releaseCached(p);
        boolean idle = p.small.isEmpty() && (p.large.isEmpty() || p.expandable != null && p.large.size() == 1
                && p.large.first().size == p.expandable.size);
        if (!idle) return;
        if (p.expandable != null) {
            vm.release(p.expandable.address, p.expandable.size);
            segments.remove(p.expandable);
        }
        pools.remove(stream);
    }

    private void flush() {
        flushes++;
        emptyCache();
    }

    /** Unmaps the pages that lie wholly inside free block {@code b}. */
    private void unmapInside(Block b) {
        Segment s = b.segment;
        long page = vm.granularity();
        int first = (int) ((b.address - s.address + page - 1) / page), last = (int) ((b.address + b.size - s.address) / page);
        for (int i = s.mapped.nextSetBit(first); i >= 0 && i < last; i = s.mapped.nextSetBit(i)) {
            int end = Math.min(last, s.mapped.nextClearBit(i));
            long addr = s.address + i * page, bytes = (end - i) * page;
            vm.unmap(addr, bytes);
            s.mapped.clear(i, end);
            s.mappedBytes -= bytes;
            dropReserved(addr, bytes);
            i = end;
        }
    }

    /**
     * Gives everything back to the driver: flushes, then releases the expandable address ranges.
     * Live blocks must have been freed; returns false (and releases nothing) if any remain.
     */
    public synchronized boolean releaseAll() {
        emptyCache();
        if (!live.isEmpty() || !pending.isEmpty()) return false;
        for (Pools p : pools.values()) {
            if (p.expandable != null) {
                vm.release(p.expandable.address, p.expandable.size);
                segments.remove(p.expandable);
                p.large.clear();
                p.expandable = null;
            }
        }
        return true;
    }

    /** Bytes in live blocks now, without building a {@link #stats} snapshot. */
    public synchronized long allocated() {
        return allocated;
    }

    /** Bytes the driver backs now. */
    public synchronized long reserved() {
        return reserved;
    }

    public synchronized MemoryStats stats() {
        long free = 0;   // reserved bytes in free blocks of segments that also hold other blocks
        for (Pools p : pools.values()) {
            for (TreeSet<Block> pool : List.of(p.small, p.large)) {
                for (Block b : pool) {
                    if (b.segment.expandable()) free += mappedInside(b);
                    else if (b.prev != null || b.next != null) free += b.size;
                }
            }
        }
        return new MemoryStats(allocated, allocatedPeak, allocated + pendingBytes, reserved, reservedPeak, free, segments.size(),
                driverAllocations, driverFrees, flushes, failures);
    }

    /** Mapped bytes of the pages that a free block overlaps and no live block touches. */
    private long mappedInside(Block b) {
        Segment s = b.segment;
        long page = vm.granularity();
        int first = (int) ((b.address - s.address + page - 1) / page), last = (int) ((b.address + b.size - s.address) / page);
        if (first >= last) return 0;
        return (long) s.mapped.get(first, last).cardinality() * page;
    }

    /** Live blocks, for audits and tests. */
    public synchronized List<Block> liveBlocks() {
        return List.copyOf(live.values());
    }

    /** Whether the pages under [address, address + bytes) are all mapped (always true for plain segments); for tests. */
    public synchronized boolean backed(Block b) {
        Segment s = b.segment;
        if (!s.expandable()) return true;
        long page = vm.granularity();
        int first = (int) ((b.address - s.address) / page), last = (int) ((b.address + b.size - s.address + page - 1) / page);
        return s.mapped.nextClearBit(first) >= last;
    }
}
