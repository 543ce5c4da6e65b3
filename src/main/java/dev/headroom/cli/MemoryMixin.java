package dev.headroom.cli;

import dev.headroom.core.Sizes;
import dev.headroom.runtime.Ops;
import dev.headroom.runtime.TempFiles;
import dev.headroom.runtime.memory.DeviceMemory;
import dev.headroom.runtime.memory.MemoryOptions;
import dev.headroom.runtime.memory.MemoryStats;
import dev.headroom.runtime.memory.Pressure;
import java.io.IOException;
import java.io.Writer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import picocli.CommandLine.Option;

/** Options of every command that runs a model: the device budget, the memory trace, the allocator's mode. */
final class MemoryMixin {
    @Option(names = "--vram-budget", paramLabel = "SIZE",
            description = "Behave as if the device had only this much memory, e.g. 8GiB (on the CPU: the memory for activations)")
    String budget;

    @Option(names = "--memory-trace", paramLabel = "FILE", description = "Write every allocation, free and rung of the degrade ladder as JSON lines (see memory-report)")
    Path trace;

    @Option(names = "--plain-segments", description = "Grow device memory in plain cuMemAlloc segments instead of expandable virtual-memory ones (for comparison)")
    boolean plain;

    @Option(names = "--pressure", paramLabel = "E,W,C", description = "Pressure thresholds as fractions of the budget (default 0.6,0.75,0.9)")
    String pressure;

    static final int TRACE_EVENTS = 1 << 20;

    MemoryOptions options() {
        long bytes = 0;
        if (budget != null) {
            try {
                bytes = Sizes.parseOption(budget);
            } catch (IllegalArgumentException e) {
                throw new Main.UsageError("--vram-budget: " + e.getMessage());
            }
            if (bytes < (16L << 20)) throw new Main.UsageError("--vram-budget " + budget + " is too small to run anything; use at least 16MiB");
        }
        Pressure.Thresholds t = Pressure.Thresholds.DEFAULT;
        if (pressure != null) {
            try {
                t = Pressure.Thresholds.parse(pressure);
            } catch (IllegalArgumentException e) {
                throw new Main.UsageError("--pressure: " + e.getMessage());
            }
        }
        if (trace != null) {
            Path dir = trace.toAbsolutePath().getParent();
            if (dir == null || !Files.isDirectory(dir)) throw new Main.UsageError("--memory-trace " + trace + ": folder " + dir + " does not exist");
            if (Files.isDirectory(trace)) throw new Main.UsageError("--memory-trace " + trace + " is a folder; give a file name");
            if (Files.exists(trace) && !Files.isRegularFile(trace)) throw new Main.UsageError("--memory-trace " + trace + " is not a regular file");
            if (!Files.isWritable(dir)) throw new Main.UsageError("--memory-trace " + trace + ": folder " + dir + " is not writable");
        }
        return new MemoryOptions(bytes, !plain, trace == null ? 0 : TRACE_EVENTS, t);
    }

    /** Writes the trace, if one was asked for, through a temporary file renamed into place (call it only when the run succeeded). */
    void writeTrace(Ops ops) throws IOException {
        DeviceMemory m = ops.memory();
        if (trace == null || m == null || m.trace() == null) return;
        Path tmp = TempFiles.create(trace);
        try {
            try (Writer w = Files.newBufferedWriter(tmp)) {
                m.trace().write(w);
            }
            TempFiles.commit(tmp, trace);
        } finally {
            TempFiles.discard(tmp);
        }
    }

    /** The memory figures for --json reports. */
    static Map<String, Object> summary(Ops ops) {
        Map<String, Object> r = new LinkedHashMap<>();
        DeviceMemory m = ops.memory();
        if (m == null) return r;
        MemoryStats s = m.stats();
        r.put("budget_bytes", m.ledger().limit());
        r.put("allocated_peak_bytes", s.allocatedPeak());
        r.put("reserved_peak_bytes", s.reservedPeak());
        r.put("driver_allocations", s.driverAllocations());
        r.put("driver_frees", s.driverFrees());
        r.put("failed_allocations", s.failures());
        Map<String, Object> peaks = new LinkedHashMap<>();
        for (var b : m.ledger().children()) peaks.put(b.name(), b.peak());
        r.put("peak_bytes_by_category", peaks);
        r.put("rungs", m.rungs());
        return r;
    }
}
