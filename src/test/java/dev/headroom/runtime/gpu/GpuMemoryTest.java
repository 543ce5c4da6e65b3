package dev.headroom.runtime.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.Precision;
import dev.headroom.cuda.Driver;
import dev.headroom.runtime.DeviceBuffer;
import dev.headroom.runtime.memory.DeviceMemory;
import dev.headroom.runtime.memory.DeviceOutOfMemory;
import dev.headroom.runtime.memory.ImageTrace;
import dev.headroom.runtime.memory.MemoryOptions;
import dev.headroom.runtime.memory.MemoryStats;
import dev.headroom.testing.GpuTestBase;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The device memory on a real GPU: expandable segments through the virtual-memory API, events, budgets. */
class GpuMemoryTest extends GpuTestBase {

    @Test
    void expandableSegmentsHoldTheImageTraceTightlyAndGiveItAllBack() {
        Driver cu = Driver.get();
        List<ImageTrace.Step> trace = ImageTrace.generate(20261122, 1000);
        for (boolean expandable : new boolean[] {true, false}) {
            long freeBefore = cu.memInfo()[0];
            try (CudaOps ops = CudaOps.open(0, Precision.F16, MemoryOptions.DEFAULT.withExpandable(expandable))) {
                DeviceMemory m = ops.memory();
                ImageTrace.replay(trace, m::allocate, m::free);
                long first = m.stats().driverAllocations();
                ImageTrace.replay(trace, m::allocate, m::free);
                long second = m.stats().driverAllocations() - first;
                MemoryStats s = m.stats();
                double ratio = (double) s.reservedPeak() / s.allocatedPeak();
                System.out.printf("H100 image trace, %s: allocated peak %.1f MiB, reserved peak %.1f MiB, ratio %.3f; driver calls %d then %d%n",
                        expandable ? "expandable" : "plain", s.allocatedPeak() / 1048576.0, s.reservedPeak() / 1048576.0, ratio, first, second);
                assertEquals(0, second, "the second pass of the trace made no driver call");
                if (expandable) assertTrue(ratio <= 1.10, "reserved/allocated " + ratio);
            }
            long freeAfter = cu.memInfo()[0];
            assertTrue(Math.abs(freeAfter - freeBefore) < (64L << 20), "device free memory back to where it was: " + freeBefore + " -> " + freeAfter);
        }
    }

    @Test
    void aBlockUsedOnAnotherStreamWaitsForItsEvent() {
        Driver cu = Driver.get();
        var stream = cu.streamCreate();
        try {
            DeviceMemory m = gpu.memory();
            DeviceBuffer b = m.allocate(8L << 20);
            m.recordStream(b, stream.address());
            long before = m.stats().allocated();
            m.free(b);
            MemoryStats s = m.stats();
            assertEquals(before - b.bytes(), s.allocated());
            assertEquals(s.allocated() + b.bytes(), s.active(), "freed but still active until the other stream's event completes");
            cu.streamSynchronize(stream);
            m.free(m.allocate(4096));   // an allocation processes completed events
            assertEquals(m.stats().allocated(), m.stats().active());
        } finally {
            cu.streamDestroy(stream);
        }
    }

    @Test
    void aBudgetMakesAnEightyGigabyteCardBehaveLikeASmallOne() {
        try (CudaOps ops = CudaOps.open(0, Precision.F16, MemoryOptions.DEFAULT.withBudget(1L << 30))) {
            DeviceMemory m = ops.memory();
            DeviceBuffer a = m.allocate(700L << 20);
            var e = org.junit.jupiter.api.Assertions.assertThrows(DeviceOutOfMemory.class, () -> m.allocate(400L << 20));
            assertEquals(1L << 30, e.budget);
            assertTrue(e.deviceTotal > (70L << 30), "the card itself is large: " + e.deviceTotal);
            assertTrue(e.getMessage().contains("device free"), e.getMessage());
            System.out.println("at 1 GiB: " + e.getMessage());
            assertTrue(!e.otherProcesses.startsWith("unknown"), "NVML lists the device's processes: " + e.otherProcesses);
            m.free(a);
            m.free(m.allocate(900L << 20));   // fits once the first is gone
        }
    }
}
