package dev.headroom.runtime.memory;

/**
 * How a backend sets up its device memory.
 *
 * @param budget      bytes the device may use in all; 0 = all the device has (--vram-budget)
 * @param expandable  grow the large pool through the driver's virtual-memory API rather than in
 *                    plain segments (CUDA only; the CPU backend always uses plain segments)
 * @param traceEvents how many events the trace keeps; 0 = no trace
 */
public record MemoryOptions(long budget, boolean expandable, int traceEvents, Pressure.Thresholds thresholds) {
    public static final MemoryOptions DEFAULT = new MemoryOptions(0, true, 0, Pressure.Thresholds.DEFAULT);

    public MemoryOptions {
        if (budget < 0) throw new IllegalArgumentException("negative memory budget " + budget);
    }

    public MemoryOptions withBudget(long bytes) {
        return new MemoryOptions(bytes, expandable, traceEvents, thresholds);
    }

    public MemoryOptions withExpandable(boolean on) {
        return new MemoryOptions(budget, on, traceEvents, thresholds);
    }

    public MemoryTrace newTrace() {
        return traceEvents == 0 ? null : new MemoryTrace(traceEvents);
    }
}
