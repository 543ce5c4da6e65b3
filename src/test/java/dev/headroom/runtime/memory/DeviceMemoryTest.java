package dev.headroom.runtime.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.headroom.runtime.DeviceBuffer;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The ledger, pressure levels, degrade ladder, leak audits and trace of {@link DeviceMemory}, on a fake device. */
class DeviceMemoryTest {
    static final long MiB = 1L << 20;

    static DeviceMemory memory(long budget, MemoryTrace trace) {
        return new DeviceMemory("fake", budget, new CachingAllocatorTest.FakeDevice(1L << 40), null, StreamEvents.SINGLE_STREAM,
                Pressure.Thresholds.DEFAULT, trace, DeviceMemory.Probe.NONE);
    }

    @Test
    void theLedgerAddsUpAndPressureLevelsReachListeners() {
        DeviceMemory m = memory(100 * MiB, null);
        List<String> seen = new ArrayList<>();
        m.addListener(new MemoryListener() {
            @Override
            public void pressureChanged(Pressure from, Pressure to, long used, long budget) {
                seen.add(from + ">" + to);
            }
        });
        List<DeviceBuffer> held = new ArrayList<>();
        for (int i = 0; i < 8; i++) held.add(m.allocate(10 * MiB));   // two to a 20 MiB segment
        Budget root = m.ledger();
        assertEquals(m.stats().reserved(), root.used(), "root = what the driver backs");
        long children = root.children().stream().mapToLong(Budget::used).sum();
        assertEquals(root.used(), children, "root = sum of its children");
        assertEquals(m.stats().allocated(), m.usedByCategory().get("activations"));
        assertEquals(List.of("OPTIMAL>ELEVATED", "ELEVATED>WARNING"), seen, "60% and 75% crossed, 90% not yet");
        assertEquals(Pressure.WARNING, m.pressure());
        assertEquals(20 * MiB, m.headroom(), "budget less live bytes: the cache counts as free");
        for (DeviceBuffer b : held) m.free(b);
        assertEquals(List.of("OPTIMAL>ELEVATED", "ELEVATED>WARNING", "WARNING>ELEVATED", "ELEVATED>OPTIMAL"), seen, "and back down, level by level");
        assertEquals(0, m.usedByCategory().get("activations"));
        assertEquals(m.stats().reserved(), m.usedByCategory().get("cache"), "freed blocks stay cached");
        assertEquals(100 * MiB, m.headroom(), "all of it cached, so all of it available");
        m.close();
    }

    @Test
    void theLadderFlushesThenEvictsThenFailsWithTheNumbers() {
        MemoryTrace trace = new MemoryTrace(1000);
        DeviceMemory m = memory(100 * MiB, trace);
        DeviceBuffer[] weights = new DeviceBuffer[1];
        try (var s = m.tag("weights", "load")) {
            weights[0] = m.allocate(30 * MiB);
        }
        m.free(m.allocate(60 * MiB));                 // 60 MiB now cached
        m.addListener(new MemoryListener() {
            @Override
            public long evict(long bytes) {
                if (weights[0] == null) return 0;
                long b = weights[0].bytes();
                m.free(weights[0]);
                weights[0] = null;
                return b;
            }
        });
        DeviceBuffer big = m.allocate(90 * MiB);      // fits only once the cache is flushed and the weights are evicted
        assertEquals(1L, m.rungs().get("flush-cache"));
        assertEquals(1L, m.rungs().get("evict"));
        assertEquals(0, m.usedByCategory().get("weights"));
        var e = assertThrows(DeviceOutOfMemory.class, () -> m.allocate(50 * MiB));
        assertEquals(50 * MiB, e.requested);
        assertEquals(100 * MiB, e.budget);
        assertEquals(90 * MiB, e.allocated);
        assertEquals(List.of("flush-cache", "evict"), e.rungs);
        assertTrue(e.getMessage().contains("requested 50.00 MiB; budget 100.00 MiB, allocated 90.00 MiB"), e.getMessage());
        m.free(big);
        assertTrue(trace.events().stream().anyMatch(ev -> ev.kind() == MemoryTrace.Kind.OOM && ev.bytes() == 50 * MiB));
        assertTrue(trace.events().stream().anyMatch(ev -> ev.kind() == MemoryTrace.Kind.RUNG && "evict".equals(ev.category())));
        m.close();
    }

    @Test
    void aJobOverItsOwnLimitFailsWhileTheDeviceHasRoom() {
        DeviceMemory m = memory(1L << 30, null);
        try (var job = m.job("job-1", 8 * MiB)) {
            DeviceBuffer a = m.allocate(6 * MiB);
            var e = assertThrows(DeviceOutOfMemory.class, () -> m.allocate(4 * MiB));
            assertTrue(e.getMessage().contains("budget of 'fake/activations/job-1'"), e.getMessage());
            m.free(a);
        }
        assertEquals(0, m.stats().allocated());
        m.close();
    }

    @Test
    void closingAJobOrTheMemoryWithLiveBuffersNamesTheLeak() {
        DeviceMemory m = memory(1L << 30, null);
        var job = m.job("job-7", Long.MAX_VALUE);
        DeviceBuffer b;
        try (var s = m.tag("activations", "conv_first")) {
            b = m.allocate(3 * MiB);
        }
        var e = assertThrows(IllegalStateException.class, job::close);
        assertTrue(e.getMessage().contains("job 'job-7' ended with 3.00 MiB") && e.getMessage().contains("conv_first"), e.getMessage());
        var e2 = assertThrows(IllegalStateException.class, m::close);
        assertTrue(e2.getMessage().contains("1 live buffers") && e2.getMessage().contains("job-7 (conv_first) 3.00 MiB"), e2.getMessage());
        assertEquals(0, m.stats().reserved(), "closing gave everything back anyway");
    }

    @Test
    void theTraceIsBoundedAndWritesJsonLines() throws Exception {
        MemoryTrace trace = new MemoryTrace(50);
        DeviceMemory m = memory(1L << 30, trace);
        for (int i = 0; i < 40; i++) {
            try (var s = m.tag(i % 2 == 0 ? "activations" : "workspace", "op" + i)) {
                m.free(m.allocate((i + 1) * 100_000L));
            }
        }
        assertEquals(50, trace.events().size());
        assertTrue(trace.dropped() > 0);
        StringWriter w = new StringWriter();
        trace.write(w);
        ObjectMapper json = new ObjectMapper();
        long seq = -1;
        for (String line : w.toString().split("\n")) {
            JsonNode n = json.readTree(line);
            assertTrue(n.get("seq").asLong() > seq, "in order");
            seq = n.get("seq").asLong();
            if (n.get("kind").asText().equals("alloc")) assertTrue(n.get("op").asText().startsWith("op"));
        }
        m.close();
    }
}
