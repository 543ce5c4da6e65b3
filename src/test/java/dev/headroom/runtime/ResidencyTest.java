package dev.headroom.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.Precision;
import dev.headroom.core.residency.ResidencyPolicy.Priority;
import dev.headroom.core.residency.ResidencyPolicy.Where;
import dev.headroom.runtime.cpu.CpuDevice;
import dev.headroom.runtime.memory.DeviceOutOfMemory;
import dev.headroom.runtime.memory.MemoryOptions;
import dev.headroom.runtime.memory.MemoryTrace;
import dev.headroom.testing.SmallModels;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** The residency manager on the CPU device: shared leases, the ladder's evict rung, make-room, the host cache, traces. */
class ResidencyTest {
    private static final long MiB = 1L << 20;

    /** A CPU device with a 24 MiB budget. */
    private static CpuDevice smallDevice() {
        return new CpuDevice(new MemoryOptions(24 * MiB, false, 1000, dev.headroom.runtime.memory.Pressure.Thresholds.DEFAULT));
    }

    /** A loader of {@code src} that counts its reads "from disk" in {@code reads}. */
    private static Residency.Loader countingReads(Residency.Source src, AtomicInteger reads) {
        return () -> {
            reads.incrementAndGet();
            return src;
        };
    }

    @Test
    void idleWeightsGoWhenAnAllocationNeedsTheRoomAndComeBackFromTheHostCache() throws Exception {
        AtomicInteger reads = new AtomicInteger();
        Residency.Loader disk = countingReads(SmallModels.build("rrdbnet", 7), reads);
        try (CpuDevice device = smallDevice(); Residency models = new Residency(device, 64 * MiB)) {
            var memory = device.memory();
            long weights;
            try (Session s = device.openSession();
                 Residency.Lease a = models.acquire("a", Priority.NORMAL, disk, s);
                 Residency.Lease again = models.acquire("a", Priority.NORMAL, disk, s)) {
                assertTrue(a.weights() == again.weights(), "one copy shared by both leases");
                weights = memory.weights("a fp32").used();
                assertTrue(weights > 0, "charged to weights/a fp32");
                // in use: the ladder cannot take it, so a request for the whole budget fails
                assertThrows(DeviceOutOfMemory.class, () -> memory.allocate(24 * MiB - weights / 2));
            }
            assertEquals(Where.DEVICE, models.status().getFirst().where());
            // idle now: the same request evicts it (the ladder's evict rung) and succeeds
            DeviceBuffer big = memory.allocate(24 * MiB - weights / 2);
            assertEquals(Where.HOST, models.status().getFirst().where(), "evicted, host copy kept");
            assertEquals(0, memory.weights("a fp32").used());
            memory.free(big);
            try (Session s = device.openSession(); Residency.Lease a = models.acquire("a", Priority.NORMAL, disk, s)) {
                assertEquals(1, reads.get(), "reloaded from the host copy, not read again");
                assertEquals(weights, memory.weights("a fp32").used());
            }
            assertEquals(List.of(1L, 1L, 1L), List.of(models.counts()[0], models.counts()[1], models.counts()[2]));
            List<MemoryTrace.Kind> kinds = memory.trace().events().stream().map(MemoryTrace.Event::kind)
                    .filter(k -> k == MemoryTrace.Kind.LOAD || k == MemoryTrace.Kind.EVICT || k == MemoryTrace.Kind.RELOAD).toList();
            assertEquals(List.of(MemoryTrace.Kind.LOAD, MemoryTrace.Kind.EVICT, MemoryTrace.Kind.RELOAD), kinds);
        }
    }

    @Test
    void makeRoomEvictsLowBeforeHighAndTheHostCacheLimitSendsModelsBackToDisk() throws Exception {
        try (CpuDevice device = new CpuDevice(MemoryOptions.DEFAULT.withBudget(64 * MiB)); Residency models = new Residency(device, 1)) {
            AtomicInteger reads = new AtomicInteger();
            for (String m : List.of("low", "high")) {
                try (Session s = device.openSession();
                     var l = models.acquire(m, m.equals("low") ? Priority.LOW : Priority.HIGH, () -> {
                         reads.incrementAndGet();
                         return SmallModels.build("srvgg", 3);
                     }, s)) {
                    assertEquals(Precision.F32, s.precision());
                }
            }
            long headroom = device.memory().headroom();
            long freed = models.makeRoom(headroom + 1);
            assertTrue(freed > 0);
            var byKey = models.status();
            assertEquals(Where.DISK, byKey.stream().filter(s -> s.key().startsWith("low")).findFirst().orElseThrow().where(),
                    "LOW went first, and a 1-byte host cache keeps no copy");
            assertEquals(Where.DEVICE, byKey.stream().filter(s -> s.key().startsWith("high")).findFirst().orElseThrow().where());
            assertEquals(0, models.makeRoom(1), "room enough already");
        }
    }

    @Test
    void evictByNameFreesTheDeviceAtOnceButNotWhileAJobHoldsTheModel() throws Exception {
        AtomicInteger reads = new AtomicInteger();
        Residency.Loader disk = countingReads(SmallModels.build("rrdbnet", 7), reads);
        try (CpuDevice device = smallDevice(); Residency models = new Residency(device, 64 * MiB)) {
            var memory = device.memory();
            assertEquals(0, models.evict("a", Precision.F32), "never loaded: nothing to free");
            long weights;
            try (Session s = device.openSession(); Residency.Lease a = models.acquire("a", Priority.PINNED, disk, s)) {
                weights = memory.weights("a fp32").used();
                assertTrue(weights > 0);
                Residency.InUse e = assertThrows(Residency.InUse.class, () -> models.evict("a", Precision.F32));
                assertEquals(1, e.jobs);
                assertTrue(e.getMessage().contains("in use by 1 job on cpu"), e.getMessage());
                assertEquals(weights, memory.weights("a fp32").used(), "still there, still usable");
            }
            assertEquals(weights, models.evict("a", Precision.F32), "idle (pinned, but asked by name): freed");
            assertEquals(0, memory.weights("a fp32").used());
            assertEquals(Where.DISK, models.status().getFirst().where(), "host copy dropped too");
            assertEquals(0, models.evict("a", Precision.F32), "a second unload frees nothing");
            try (Session s = device.openSession(); Residency.Lease a = models.acquire("a", Priority.NORMAL, disk, s)) {
                assertEquals(2, reads.get(), "loaded from its file again");
                assertEquals(weights, memory.weights("a fp32").used());
            }
            assertTrue(memory.trace().events().stream().anyMatch(ev -> ev.kind() == MemoryTrace.Kind.EVICT), "the unload is traced");
        }
    }
}
