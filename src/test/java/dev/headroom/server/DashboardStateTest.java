package dev.headroom.server;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.headroom.core.Sizes;
import dev.headroom.runtime.Residency;
import dev.headroom.runtime.cpu.CpuDevice;
import dev.headroom.runtime.memory.MemoryOptions;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Why a queued job waits, as the dashboard says it: memory short on the best device, no free slot, or its place in line. */
class DashboardStateTest {
    static final long MiB = 1 << 20;

    static DeviceSlot device(long budget, int maxRunning) {
        CpuDevice cpu = new CpuDevice(MemoryOptions.DEFAULT.withBudget(budget));
        return new DeviceSlot(cpu, new Residency(cpu, 0), maxRunning);
    }

    @Test
    void namesTheBytesMissingOnTheDeviceClosestToFitting() {
        try (DeviceSlot a = device(1024 * MiB, 4); DeviceSlot b = device(1024 * MiB, 4)) {
            a.reserve("x", 900 * MiB);
            b.reserve("y", 700 * MiB);
            assertEquals("waiting for " + Sizes.format(76 * MiB) + " on cpu (needs " + Sizes.format(400 * MiB) + ", " + Sizes.format(324 * MiB) + " free)",
                    DashboardState.why(List.of(a, b), d -> 400 * MiB, 0));
            a.release("x");
            b.release("y");
        }
    }

    @Test
    void namesAFullDeviceAndAPlaceInLine() {
        try (DeviceSlot a = device(1024 * MiB, 1); DeviceSlot b = device(1024 * MiB, 2)) {
            a.reserve("x", 100 * MiB);
            assertEquals("waiting for a free slot on cpu (1 of 1 running)", DashboardState.why(List.of(a), d -> 10 * MiB, 0));
            b.reserve("y", 10 * MiB);
            b.reserve("z", 10 * MiB);
            assertEquals("waiting for a free slot on cpu (1 of 1 running), cpu (2 of 2 running)", DashboardState.why(List.of(a, b), d -> 10 * MiB, 0),
                    "with every device full, each is named");
            b.release("y");
            b.release("z");
            assertEquals("fits; behind 3 jobs in the queue", DashboardState.why(List.of(b), d -> 10 * MiB, 3));
            assertEquals("fits on cpu; starting", DashboardState.why(List.of(b), d -> 10 * MiB, 0));
            a.release("x");
        }
    }
}
