package dev.headroom.runtime.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.testing.Randoms;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/** The caching allocator on a fake device: invariants under seeded random traces, reuse, flush and OOM. */
class CachingAllocatorTest {

    /** A device of {@code capacity} bytes handing out segments at increasing addresses; it remembers what is out. */
    static final class FakeDevice implements RawAllocator {
        final long capacity;
        final TreeMap<Long, Long> out = new TreeMap<>();
        long next = 1L << 40, used, calls;

        FakeDevice(long capacity) {
            this.capacity = capacity;
        }

        @Override
        public long allocate(long bytes) {
            calls++;
            if (used + bytes > capacity) return 0;
            long a = next;
            next += bytes + 4096;
            out.put(a, bytes);
            used += bytes;
            return a;
        }

        @Override
        public void free(long address, long bytes) {
            Long b = out.remove(address);
            if (b == null || b != bytes) throw new AssertionError("freeing " + address + "/" + bytes + " which the device did not hand out");
            used -= bytes;
        }
    }

    /** Virtual memory of {@code capacity} physical bytes in pages (2 MiB unless said); it checks that maps and unmaps pair up. */
    static final class FakeVirtual implements VirtualMemory {
        static final long PAGE = 2L << 20;
        final long capacity, page;
        final TreeMap<Long, Long> ranges = new TreeMap<>();
        final java.util.TreeSet<Long> pages = new java.util.TreeSet<>();
        long next = 1L << 44, maps, unmaps;

        FakeVirtual(long capacity) {
            this(capacity, PAGE);
        }

        FakeVirtual(long capacity, long page) {
            this.capacity = capacity;
            this.page = page;
        }

        @Override
        public long granularity() {
            return page;
        }

        @Override
        public long reserve(long bytes) {
            long a = next;
            next += bytes + page;
            ranges.put(a, bytes);
            return a;
        }

        @Override
        public boolean map(long address, long bytes) {
            maps++;
            if ((pages.size() + bytes / page) * page > capacity) return false;
            var r = ranges.floorEntry(address);
            if (r == null || address + bytes > r.getKey() + r.getValue()) throw new AssertionError("map outside a reserved range");
            for (long p = address; p < address + bytes; p += page) if (!pages.add(p)) throw new AssertionError("page mapped twice " + p);
            return true;
        }

        @Override
        public void unmap(long address, long bytes) {
            unmaps++;
            for (long p = address; p < address + bytes; p += page) if (!pages.remove(p)) throw new AssertionError("unmap of an unmapped page " + p);
        }

        @Override
        public void release(long address, long bytes) {
            if (!pages.subSet(address, address + bytes).isEmpty()) throw new AssertionError("release with pages mapped");
            if (ranges.remove(address) != bytes) throw new AssertionError("release of an unknown range");
        }
    }

    static void checkInvariants(CachingAllocator a, FakeDevice dev) {
        List<CachingAllocator.Block> live = new ArrayList<>(a.liveBlocks());
        live.sort((x, y) -> Long.compare(x.address(), y.address()));
        long sum = 0;
        for (int i = 0; i < live.size(); i++) {
            CachingAllocator.Block b = live.get(i);
            sum += b.size();
            if (i > 0) {
                CachingAllocator.Block p = live.get(i - 1);
                assertTrue(p.address() + p.size() <= b.address(), "live blocks overlap at " + b.address());
            }
            var seg = dev.out.floorEntry(b.address());
            assertTrue(seg != null && b.address() + b.size() <= seg.getKey() + seg.getValue(), "block outside every segment");
        }
        MemoryStats s = a.stats();
        assertEquals(sum, s.allocated(), "allocated = sum of live blocks");
        assertEquals(dev.used, s.reserved(), "reserved = what the device handed out");
        assertTrue(s.allocated() <= s.reserved());
    }

    @Test
    void randomTracesKeepTheInvariants() {
        Random r = new Random(Randoms.seed());
        for (int trial = 0; trial < 30; trial++) {
            FakeDevice dev = new FakeDevice(64L << 30);
            CachingAllocator a = new CachingAllocator(dev);
            List<CachingAllocator.Block> live = new ArrayList<>();
            for (int step = 0; step < 2000; step++) {
                if (live.isEmpty() || r.nextInt(100) < 55) {
                    long size = r.nextInt(4) == 0 ? 1 + r.nextInt(1 << 20) : (long) (r.nextDouble() * r.nextDouble() * (64L << 20));
                    live.add(a.allocate(size));
                } else {
                    a.free(live.remove(r.nextInt(live.size())));
                }
                if (step % 97 == 0) checkInvariants(a, dev);
                if (step % 500 == 499) a.emptyCache();
            }
            checkInvariants(a, dev);
            for (CachingAllocator.Block b : live) a.free(b);
            a.emptyCache();
            assertEquals(0, a.stats().reserved(), "everything returned");
            assertTrue(dev.out.isEmpty());
        }
    }

    @Test
    void aRepeatedJobMakesNoDriverCallAfterTheFirst() {
        FakeDevice dev = new FakeDevice(8L << 30);
        CachingAllocator a = new CachingAllocator(dev);
        long[] sizes = {3 << 20, 12 << 20, 64 << 10, 48 << 20, 7 << 20, 512, 100 << 20, 12 << 20};
        for (int pass = 0; pass < 5; pass++) {
            long before = a.stats().driverAllocations();
            List<CachingAllocator.Block> bs = new ArrayList<>();
            for (long s : sizes) bs.add(a.allocate(s));
            for (CachingAllocator.Block b : bs) a.free(b);
            if (pass > 0) assertEquals(before, a.stats().driverAllocations(), "pass " + pass + " asked the driver");
        }
    }

    @Test
    void aFullDeviceFlushesTheCacheThenFailsWithTheNumbers() {
        FakeDevice dev = new FakeDevice(100L << 20);
        CachingAllocator a = new CachingAllocator(dev);
        CachingAllocator.Block big = a.allocate(60L << 20);
        a.free(big);                                    // cached: 60 MiB reserved, none allocated
        CachingAllocator.Block other = a.allocate(70L << 20);   // needs a new segment: the cache must be flushed first
        assertEquals(1, a.stats().cacheFlushes());
        var e = assertThrows(CachingAllocator.OutOfMemory.class, () -> a.allocate(50L << 20));
        assertTrue(e.getMessage().contains("requested " + (50L << 20)), e.getMessage());
        assertEquals(70L << 20, e.stats.allocated());
        a.free(other);
    }

    @Test
    void smallRequestsDoNotSplitLargeBlocks() {
        FakeDevice dev = new FakeDevice(1L << 30);
        CachingAllocator a = new CachingAllocator(dev);
        a.free(a.allocate(30L << 20));
        CachingAllocator.Block small = a.allocate(4096);
        assertEquals(2, a.stats().segments(), "a 2 MiB small segment, not a piece of the 30 MiB one");
        a.free(small);
    }

    /**
     * Fragmentation on the seeded 1,000-request image trace ({@link ImageTrace}): reserved peak over
     * allocated peak, plain segments against expandable ones. Printed for the record.
     */
    @Test
    void fragmentationOnAnImageTrace() {
        var trace = ImageTrace.generate(20261122, 1000);
        var results = new java.util.LinkedHashMap<String, MemoryStats>();
        CachingAllocator plain = new CachingAllocator(new FakeDevice(1L << 40));
        ImageTrace.replay(trace, plain::allocate, plain::free);
        results.put("plain segments", plain.stats());
        for (long page : new long[] {2L << 20, 20L << 20}) {
            CachingAllocator exp = new CachingAllocator(new FakeDevice(1L << 40), new FakeVirtual(1L << 40, page), 1L << 36, StreamEvents.SINGLE_STREAM);
            ImageTrace.replay(trace, exp::allocate, exp::free);
            results.put("expandable, " + (page >> 20) + " MiB pages", exp.stats());
        }
        results.forEach((name, s) -> System.out.printf("image trace, %s: allocated peak %.1f MiB, reserved peak %.1f MiB, ratio %.3f, %d driver calls%n",
                name, s.allocatedPeak() / 1048576.0, s.reservedPeak() / 1048576.0, (double) s.reservedPeak() / s.allocatedPeak(), s.driverAllocations()));
        MemoryStats p = results.get("plain segments"), x = results.get("expandable, 20 MiB pages");
        assertTrue((double) p.reservedPeak() / p.allocatedPeak() < 2.67);
        assertTrue((double) x.reservedPeak() / x.allocatedPeak() <= 1.10, "expandable reserved/allocated " + (double) x.reservedPeak() / x.allocatedPeak());
    }

    @Test
    void expandableSegmentsKeepTheInvariantsAndGiveEverythingBack() {
        Random r = new Random(Randoms.seed());
        for (int trial = 0; trial < 20; trial++) {
            FakeDevice dev = new FakeDevice(64L << 30);
            FakeVirtual vm = new FakeVirtual(64L << 30);
            CachingAllocator a = new CachingAllocator(dev, vm, 64L << 30, StreamEvents.SINGLE_STREAM);
            List<CachingAllocator.Block> live = new ArrayList<>();
            for (int step = 0; step < 2000; step++) {
                if (live.isEmpty() || r.nextInt(100) < 55) {
                    long size = r.nextInt(4) == 0 ? 1 + r.nextInt(1 << 20) : (long) (r.nextDouble() * r.nextDouble() * (64L << 20));
                    live.add(a.allocate(size));
                } else {
                    a.free(live.remove(r.nextInt(live.size())));
                }
                if (step % 97 == 0 || step % 500 == 499) {
                    if (step % 500 == 499) a.emptyCache();
                    List<CachingAllocator.Block> sorted = new ArrayList<>(live);
                    sorted.sort((x, y) -> Long.compare(x.address(), y.address()));
                    for (int i = 1; i < sorted.size(); i++) {
                        assertTrue(sorted.get(i - 1).address() + sorted.get(i - 1).size() <= sorted.get(i).address(), "overlap");
                    }
                    for (CachingAllocator.Block b : live) assertTrue(a.backed(b), "live block on unmapped pages");
                    MemoryStats st = a.stats();
                    assertEquals(live.stream().mapToLong(CachingAllocator.Block::size).sum(), st.allocated());
                    assertEquals(dev.used + vm.pages.size() * FakeVirtual.PAGE, st.reserved(), "reserved = segments + mapped pages");
                }
            }
            for (CachingAllocator.Block b : live) a.free(b);
            assertTrue(a.releaseAll());
            assertEquals(0, a.stats().reserved());
            assertTrue(vm.pages.isEmpty() && vm.ranges.isEmpty() && dev.out.isEmpty(), "everything returned to the driver");
        }
    }

    @Test
    void anExpandablePoolUnmapsFreePagesWhenTheDeviceIsFull() {
        FakeVirtual vm = new FakeVirtual(100L << 20);
        CachingAllocator a = new CachingAllocator(new FakeDevice(0), vm, 1L << 30, StreamEvents.SINGLE_STREAM);
        CachingAllocator.Block x = a.allocate(60L << 20);
        a.free(x);
        CachingAllocator.Block y = a.allocate(90L << 20);   // fits the address space at once, but needs x's pages back first? no: reuses them
        assertEquals(0, a.stats().cacheFlushes(), "the free 60 MiB block is reused in place");
        CachingAllocator.Block z = a.allocate(8L << 20);    // 98 MiB mapped of 100: fits
        a.free(y);
        CachingAllocator.Block w = a.allocate(40L << 20);   // reuses y's space
        a.free(w);
        a.free(z);
        var e = assertThrows(CachingAllocator.OutOfMemory.class, () -> a.allocate(120L << 20));
        assertEquals(1, a.stats().cacheFlushes(), "it unmapped what it could before giving up");
        assertEquals(0, a.stats().reserved(), "nothing live, so every page was unmapped");
        assertTrue(e.getMessage().contains("requested"));
    }

    /** A fake device's events: each completes when the test says so. */
    static final class FakeEvents implements StreamEvents {
        final java.util.Map<Long, Boolean> done = new java.util.HashMap<>();
        long next = 1;

        @Override
        public long record(long stream) {
            done.put(next, false);
            return next++;
        }

        @Override
        public boolean done(long event) {
            return done.get(event);
        }

        @Override
        public void destroy(long event) {
            if (done.remove(event) == null) throw new AssertionError("event destroyed twice");
        }
    }

    /**
     * Two streams, blocks used across them, events completing at random: no block is handed out
     * again while an event that guards it is incomplete, and all memory is accounted for.
     */
    @Test
    void blocksUsedOnAnotherStreamAreReusedOnlyAfterItsEvent() {
        Random r = new Random(Randoms.seed());
        for (int trial = 0; trial < 20; trial++) {
            FakeEvents ev = new FakeEvents();
            boolean expand = trial % 2 == 0;
            FakeVirtual vm = new FakeVirtual(64L << 30);
            FakeDevice dev = new FakeDevice(64L << 30);
            CachingAllocator a = new CachingAllocator(dev, expand ? vm : null, 64L << 30, ev);
            List<CachingAllocator.Block> live = new ArrayList<>();
            // address ranges freed while another stream may still use them, and the events guarding them
            java.util.Map<long[], List<Long>> guarded = new java.util.HashMap<>();
            for (int step = 0; step < 1500; step++) {
                int roll = r.nextInt(100);
                if (live.isEmpty() || roll < 45) {
                    long size = r.nextBoolean() ? 1 + r.nextInt(1 << 20) : 1 + r.nextInt(16 << 20);
                    CachingAllocator.Block b = a.allocate(size, r.nextInt(2));
                    for (var g : guarded.entrySet()) {
                        long[] range = g.getKey();
                        boolean overlaps = b.address() < range[1] && range[0] < b.address() + b.size();
                        boolean safe = g.getValue().stream().allMatch(e -> !ev.done.containsKey(e) || ev.done.get(e));
                        assertTrue(!overlaps || safe, "block reused before the other stream's event completed");
                    }
                    if (r.nextInt(3) == 0) a.recordStream(b, 1 - b.stream());
                    live.add(b);
                } else if (roll < 85) {
                    CachingAllocator.Block b = live.remove(r.nextInt(live.size()));
                    long before = ev.next;
                    a.free(b);
                    if (ev.next > before) {
                        List<Long> evs = new ArrayList<>();
                        for (long e = before; e < ev.next; e++) evs.add(e);
                        guarded.put(new long[] {b.address(), b.address() + b.size()}, evs);
                    }
                } else {
                    for (var e : ev.done.entrySet()) if (r.nextBoolean()) e.setValue(true);
                }
                MemoryStats s = a.stats();
                assertEquals(live.stream().mapToLong(CachingAllocator.Block::size).sum(), s.allocated());
                assertTrue(s.active() >= s.allocated() && s.active() <= s.reserved());
            }
            for (CachingAllocator.Block b : live) a.free(b);
            ev.done.replaceAll((k, v) -> true);
            assertTrue(a.releaseAll());
            assertTrue(ev.done.isEmpty(), "every event destroyed");
            assertEquals(0, a.stats().reserved());
        }
    }
}
