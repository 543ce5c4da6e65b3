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
     * Fragmentation on a seeded trace of 1,000 requests shaped like image-model activations
     * (tiles of 128-512 px, 3-192 channels, fp16) with overlapping lifetimes: reserved peak over
     * allocated peak. Printed for the record; asserted only against PyTorch's default of 2.67 on a
     * similar trace, so a regression towards it fails.
     */
    @Test
    void fragmentationOnAnImageTrace() {
        Random r = new Random(20261122);
        int[] sides = {128, 192, 256, 384, 512};
        int[] channels = {3, 32, 64, 96, 128, 160, 192};
        FakeDevice dev = new FakeDevice(1L << 40);
        CachingAllocator a = new CachingAllocator(dev);
        List<CachingAllocator.Block> live = new ArrayList<>();
        int side = sides[0];
        for (int i = 0; i < 1000; i++) {
            if (i % 100 == 0) side = sides[r.nextInt(sides.length)];   // a new tile size now and then, as a new job would
            long bytes = (long) side * side * channels[r.nextInt(channels.length)] * 2;
            live.add(a.allocate(bytes));
            while (live.size() > 4 + r.nextInt(20)) a.free(live.remove(r.nextInt(live.size())));
        }
        MemoryStats s = a.stats();
        double ratio = (double) s.reservedPeak() / s.allocatedPeak();
        System.out.printf("image trace: allocated peak %.1f MiB, reserved peak %.1f MiB, ratio %.3f, %d driver allocations%n",
                s.allocatedPeak() / 1048576.0, s.reservedPeak() / 1048576.0, ratio, s.driverAllocations());
        assertTrue(ratio < 2.67, "reserved/allocated " + ratio);
    }
}
