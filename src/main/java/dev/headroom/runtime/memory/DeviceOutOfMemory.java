package dev.headroom.runtime.memory;

import dev.headroom.core.Sizes;
import java.util.List;

/**
 * An allocation that failed after every rung of the degrade ladder the memory itself can take
 * (flush the cache, ask listeners to evict, retry). It carries what a person needs to act:
 * requested bytes, the budget, allocated, reserved-but-unused, the device's free and total
 * memory, the other processes on it, and the rungs tried. The executor may still catch it and
 * shrink its step.
 */
public final class DeviceOutOfMemory extends RuntimeException {
    public final String device;
    public final long requested, budget, allocated, reservedUnused, deviceFree, deviceTotal;
    public final String otherProcesses;
    public final List<String> rungs;

    public DeviceOutOfMemory(String device, long requested, long budget, long allocated, long reservedUnused, long deviceFree, long deviceTotal,
                             String otherProcesses, List<String> rungs, String why) {
        super(String.format("out of memory on %s: requested %s%s; budget %s, allocated %s, reserved but unused %s; device free %s of %s; "
                        + "other processes: %s; tried: %s. Use a smaller --tile, a larger --vram-budget, or free the device",
                device, Sizes.format(requested), why == null ? "" : " (" + why + ")", Sizes.format(budget), Sizes.format(allocated),
                Sizes.format(reservedUnused), deviceFree < 0 ? "?" : Sizes.format(deviceFree), deviceTotal < 0 ? "?" : Sizes.format(deviceTotal),
                otherProcesses, rungs.isEmpty() ? "nothing" : String.join(", ", rungs)));
        this.device = device;
        this.requested = requested;
        this.budget = budget;
        this.allocated = allocated;
        this.reservedUnused = reservedUnused;
        this.deviceFree = deviceFree;
        this.deviceTotal = deviceTotal;
        this.otherProcesses = otherProcesses;
        this.rungs = List.copyOf(rungs);
    }
}
