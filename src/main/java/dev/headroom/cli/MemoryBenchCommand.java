package dev.headroom.cli;

import dev.headroom.runtime.DeviceBuffer;
import dev.headroom.runtime.Session;
import dev.headroom.runtime.memory.DeviceMemory;
import dev.headroom.runtime.memory.ImageTrace;
import dev.headroom.runtime.memory.MemoryOptions;
import dev.headroom.runtime.memory.MemoryStats;
import java.io.Writer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Benchmarks of the device memory itself: the latency of a cached allocate+free pair (p50, p99),
 * driver calls in the steady state of repeated jobs, and fragmentation (reserved peak over
 * allocated peak) on the seeded image trace ({@link ImageTrace}) with expandable and plain
 * segments. {@code --write-trace} saves that trace for scripts/bench/replay_trace.py, which
 * replays it through PyTorch's allocator for the side-by-side figure.
 */
@Command(name = "bench-memory", mixinStandardHelpOptions = true,
        description = "Times cached allocations, counts driver calls of repeated jobs, and measures fragmentation on a seeded trace.")
final class MemoryBenchCommand implements Callable<Integer> {
    @Option(names = "--device", paramLabel = "auto|cpu|cuda", defaultValue = "auto")
    UpscaleCommand.Device device;

    @Option(names = "--pairs", defaultValue = "200000", description = "Timed allocate+free pairs per size (default: ${DEFAULT-VALUE})")
    int pairs;

    @Option(names = "--seed", defaultValue = "20261122", description = "Seed of the image trace (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--write-trace", paramLabel = "FILE", description = "Also write the image trace as lines 'alloc ID BYTES' / 'free ID'")
    Path writeTrace;

    @picocli.CommandLine.Mixin
    OutputOptions output;

    @Override
    public Integer call() throws Exception {
        if (pairs < 100) throw new Main.UsageError("--pairs must be at least 100");
        List<ImageTrace.Step> trace = ImageTrace.generate(seed, 1000);
        if (writeTrace != null) {
            try (Writer w = Files.newBufferedWriter(writeTrace)) {
                for (ImageTrace.Step s : trace) w.write(s.free() ? "free " + s.id() + "\n" : "alloc " + s.id() + " " + s.bytes() + "\n");
            }
        }
        Map<String, Object> out = new LinkedHashMap<>();
        Map<String, Object> modes = new LinkedHashMap<>();
        for (boolean expandable : new boolean[] {true, false}) {
            try (Session ops = Backend.open(device, null, MemoryOptions.DEFAULT.withBudget(0).withExpandable(expandable))) {
                out.put("device", ops.name());
                modes.put(expandable ? "expandable" : "plain", measure(ops.memory(), trace));
            }
        }
        out.put("trace", "seed " + seed + ", " + trace.size() + " steps");
        out.put("modes", modes);
        if (output.json) {
            OutputOptions.printJson(out);
        } else {
            System.out.println("device memory on " + out.get("device") + " (" + out.get("trace") + ")");
            modes.forEach((k, v) -> System.out.println("  " + k + ": " + v));
        }
        return 0;
    }

    private Map<String, Object> measure(DeviceMemory m, List<ImageTrace.Step> trace) {
        Map<String, Object> r = new LinkedHashMap<>();
        Map<String, Object> latency = new LinkedHashMap<>();
        for (long size : new long[] {4096, 1L << 20, 64L << 20}) {
            m.free(m.allocate(size));   // the first pair fills the cache
            for (int i = 0; i < 10_000; i++) m.free(m.allocate(size));   // JIT
            long before = m.stats().driverAllocations();
            long[] ns = new long[pairs];
            for (int i = 0; i < pairs; i++) {
                long t0 = System.nanoTime();
                DeviceBuffer b = m.allocate(size);
                m.free(b);
                ns[i] = System.nanoTime() - t0;
            }
            Arrays.sort(ns);
            latency.put(size + " bytes", Map.of("p50_us", ns[pairs / 2] / 1000.0, "p99_us", ns[pairs * 99 / 100] / 1000.0,
                    "driver_calls", m.stats().driverAllocations() - before));
        }
        r.put("alloc_free_pair", latency);
        m.emptyCache();
        // the image trace, five times over: the first pass grows the pool, the others should not touch the driver
        long[] driver = new long[5];
        long requestedPeak = 0;
        MemoryStats first = null;
        for (int pass = 0; pass < 5; pass++) {
            long before = m.stats().driverAllocations();
            requestedPeak = ImageTrace.replay(trace, m::allocate, m::free);
            driver[pass] = m.stats().driverAllocations() - before;
            if (pass == 0) first = m.stats();
        }
        r.put("trace_driver_calls_per_pass", Arrays.stream(driver).boxed().toList());
        r.put("trace_requested_peak_bytes", requestedPeak);
        r.put("trace_allocated_peak_bytes", first.allocatedPeak());
        r.put("trace_reserved_peak_bytes", first.reservedPeak());
        r.put("trace_reserved_over_allocated", Math.round(1000.0 * first.reservedPeak() / first.allocatedPeak()) / 1000.0);
        return r;
    }
}
