package dev.headroom.cli;

import dev.headroom.models.Model;
import dev.headroom.runtime.GraphRunner;
import dev.headroom.runtime.Tensor;
import dev.headroom.runtime.Ops;
import dev.headroom.runtime.Session;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Times a model on synthetic input: median ms per tile, megapixels per second, peak activation memory.")
final class BenchCommand implements Callable<Integer> {

    @picocli.CommandLine.Mixin
    ModelOptions models;

    @Option(names = "--tile", split = ",", defaultValue = "128", paramLabel = "N[,N...]", description = "Tile sizes in input pixels (default: ${DEFAULT-VALUE})")
    int[] tiles;

    @Option(names = "--batch", defaultValue = "1", paramLabel = "N", description = "Tiles per run, stacked as one (N, tile, tile, C) input (default: ${DEFAULT-VALUE}); times are per run, and per tile in *_per_tile")
    int batch;

    @Option(names = "--eager", description = "Issue every op on every run, never replaying a recorded forward pass (CUDA graph): for comparison")
    boolean eager;

    @Option(names = "--quick-start", description = "Convolution shapes start on cuDNN's heuristic choice and are timed later, as upscale does "
            + "(default here: every shape is timed before its first run, for steady-state figures)")
    boolean quickStart;

    @Option(names = "--runs", defaultValue = "5", description = "Timed runs per tile size, after one warm-up (default: ${DEFAULT-VALUE})")
    int runs;

    @picocli.CommandLine.Mixin
    SessionOptions session;

    @picocli.CommandLine.Mixin
    OutputOptions output;


    @picocli.CommandLine.Mixin
    WeightsOption weightsOption;

    @Option(names = "--host-cache", paramLabel = "SIZE", description = "Also time the model's weights loaded from the file against reloaded from "
            + "the residency manager's host copy (pinned on a GPU) after an eviction, with this much host cache, e.g. 1GiB")
    String hostCache;


    @Override
    public Integer call() throws Exception {
        if (runs < 1) throw new Main.UsageError("--runs must be at least 1");
        if (batch < 1) throw new Main.UsageError("--batch " + batch + " must be at least 1 (tiles per run)");
        long hostCacheBytes = hostCacheBytes();
        Model m = models.load();
        m = weightsOption.apply(m);
        dev.headroom.runtime.Startup.mark("model_ready");
        for (int tile : tiles) hostBudget(m, tile);
        if (System.getenv("HEADROOM_CONV_TIMING") == null) System.setProperty("headroom.conv-timing", quickStart ? "budget" : "full");
        Session ops = session.open();
        dev.headroom.runtime.Startup.mark("session_open");
        try (GraphRunner runner = weightsOption.runner(m, ops)) {
            dev.headroom.runtime.Startup.mark("weights_on_device");
            runner.bands(!models.wholeTensors);
            runner.record(!eager);
            Map<String, Object> reloads = hostCache == null ? null : ReloadBench.run(ops, () -> {
                Model x = weightsOption.apply(models.load());
                return new dev.headroom.runtime.Residency.Source(x.graph(), x.weights(), x.valueRange());
            }, hostCacheBytes, runs);
            int status = bench(m, ops, runner, reloads);
            session.memory.writeTrace(ops);   // only for a run that succeeded
            return status;
        } finally {
            ops.close();
        }
    }

    /**
     * Refuses, in 64-bit arithmetic and before anything is allocated, a tile whose input and output
     * alone would not fit half the Java heap (a --tile of 20000 is 4.8 GB of input floats).
     */
    private void hostBudget(Model m, int tile) {
        if (tile < 8) throw new Main.UsageError("--tile " + tile + " is too small; use at least 8");
        long pixels = (long) batch * tile * tile;
        long bytes = pixels * 4L * (m.graph().inputChannels() + (long) m.graph().outputChannels() * m.scale() * m.scale());
        long heap = Runtime.getRuntime().maxMemory();
        if (bytes > heap / 2 || pixels * m.scale() * m.scale() > Integer.MAX_VALUE) {
            throw new Main.UsageError("--tile " + tile + (batch > 1 ? " with --batch " + batch : "") + " needs " + dev.headroom.core.Sizes.format(bytes)
                    + " of host memory for its input and output alone; Java has " + dev.headroom.core.Sizes.format(heap)
                    + ": use a smaller --tile (or give Java more with HEADROOM_JAVA_OPTS=-Xmx...)");
        }
    }

    /**
     * Milliseconds per run with the next run queued before the last one's output is taken home, as
     * `upscale` runs tiles: the host's conversions then overlap the device's work.
     */
    private double pipelined(GraphRunner runner, Tensor t) {
        Ops.Download last = runner.submit(t);
        long t0 = System.nanoTime();
        for (int i = 0; i < runs; i++) {
            Ops.Download next = runner.submit(t);
            last.get();
            last = next;
        }
        last.get();
        return (System.nanoTime() - t0) / 1e6 / runs;
    }

    private long hostCacheBytes() {
        if (hostCache == null) return 0;
        try {
            long b = dev.headroom.core.Sizes.parseOption(hostCache);
            if (b <= 0) throw new IllegalArgumentException("must be above 0");
            return b;
        } catch (IllegalArgumentException e) {
            throw new Main.UsageError("--host-cache: " + e.getMessage());
        }
    }

    private int bench(Model m, Session ops, GraphRunner runner, Map<String, Object> reloads) throws Exception {
        Random rnd = new Random(1);
        List<Map<String, Object>> rows = new ArrayList<>();
        for (int tile : tiles) {
            if (tile < 8) throw new Main.UsageError("--tile " + tile + " is too small; use at least 8");
            int c = m.graph().inputChannels();
            float[] in = new float[batch * tile * tile * c];
            for (int i = 0; i < in.length; i++) in[i] = rnd.nextFloat() * m.valueRange();
            Tensor t = Tensor.wrap(in, batch, tile, tile, c);
            long first = System.nanoTime();
            runner.run(t);   // warm-up: JIT, kernel and algorithm choice, first allocations
            double firstMs = (System.nanoTime() - first) / 1e6;
            dev.headroom.runtime.Startup.mark("first_run_done");
            // from the process's start: what a user waits for the first tile on a new machine (JVM, model, device, kernels)
            long sinceStart = ProcessHandle.current().info().startInstant()
                    .map(s -> java.time.Duration.between(s, java.time.Instant.now()).toMillis()).orElse(-1L);
            // one run with a wait after every op gives the profile; the timed runs below do not wait
            runner.resetProfile();
            runner.profile(true);
            runner.run(t);
            runner.profile(false);
            Map<String, Long> byOp = new java.util.TreeMap<>(runner.nanosByOp());
            double[] ms = new double[runs];
            for (int i = 0; i < runs; i++) {
                long t0 = System.nanoTime();
                runner.run(t);   // includes upload and download; run() returns a host tensor, so the device is done
                ms[i] = (System.nanoTime() - t0) / 1e6;
            }
            Arrays.sort(ms);
            double median = ms[runs / 2];
            double[] deviceMs = deviceOnly(ops, runner, t);
            Map<String, Double> phases = phases(ops, runner, t);
            double pipelinedMs = pipelined(runner, t);
            double gflop = m.graph().flopsPerInputPixel() * tile * tile * batch / 1e9;
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("tile", tile);
            row.put("batch", batch);
            row.put("first_run_ms", round(firstMs));
            if (rows.isEmpty()) row.put("first_run_done_since_process_start_ms", sinceStart);
            if (rows.isEmpty()) row.put("startup_ms", dev.headroom.runtime.Startup.marks());
            row.put("median_ms", round(median));
            row.put("min_ms", round(ms[0]));
            if (deviceMs != null) {
                row.put("device_median_ms", round(deviceMs[runs / 2]));
                row.put("device_min_ms", round(deviceMs[0]));
                row.put("device_median_ms_per_tile", round(deviceMs[runs / 2] / batch));
            }
            row.put("median_ms_per_tile", round(median / batch));
            if (phases != null) row.put("phases_ms", phases);
            row.put("pipelined_ms_per_tile", round(pipelinedMs / batch));
            row.put("megapixels_per_s", round((double) batch * tile * tile / 1e6 / (median / 1e3)));
            row.put("gflop_per_run", round(gflop));
            row.put("gflop_per_s", round(gflop / (median / 1e3)));
            row.put("peak_activation_bytes", runner.peakBytes());
            var bands = runner.plan(batch, tile, tile).bands();
            row.put("row_bands", bands == null ? 1 : bands.count);
            row.put("replays", runner.replays());
            if (runner.weightStream() != null) {
                var sp = runner.weightStream().split();
                row.put("weights_streamed", Map.of("layers", sp.streamedCount(), "of", sp.resident().length, "slots", sp.slots(),
                        "slot_bytes", sp.slotBytes(), "resident_bytes", sp.residentBytes(), "streamed_bytes_per_pass", sp.streamedBytes(),
                        "copies", runner.weightStream().loads()));
                row.put("recording_refused", runner.recordingRefused());
            }
            if (ops.memory() != null) {
                var st = ops.memory().stats();
                row.put("device_peak_bytes", st.allocatedPeak());
                row.put("device_reserved_peak_bytes", st.reservedPeak());
                row.put("driver_allocations", st.driverAllocations());
            }
            row.putAll(ops.diagnostics());
            Map<String, Object> profile = new LinkedHashMap<>();   // from the profiled run only
            long total = byOp.values().stream().mapToLong(Long::longValue).sum();
            byOp.entrySet().stream().sorted(Map.Entry.<String, Long>comparingByValue().reversed())
                    .forEach(e -> profile.put(e.getKey(), Math.round(1000.0 * e.getValue() / total) / 10.0));
            row.put("percent_by_op", profile);
            row.put("profiled_ms", round(total / 1e6));
            rows.add(row);
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("model", models.describe(m));
        out.put("architecture", m.family() + " " + m.details());
        out.put("device", !ops.device().accelerator() ? "cpu (" + Runtime.getRuntime().availableProcessors() + " cores, "
                + jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.length() * 32 + "-bit vectors)" : ops.name());
        out.put("runs", runs);
        out.put("results", rows);
        if (reloads != null) out.put("weights_reload", reloads);
        if (output.json) {
            OutputOptions.printJson(out);
        } else {
            System.out.printf("%s%n%s on %s%s%n%8s %10s %10s %10s %10s %10s %12s%n", out.get("model"), out.get("architecture"), out.get("device"),
                    batch > 1 ? ", " + batch + " tiles per run (times per run)" : "", "tile", "median ms", "queued ms", "device ms", "MP/s", "GFLOP/s", "peak act MiB");
            for (Map<String, Object> r : rows) {
                System.out.printf("%8s %10.1f %10.1f %10s %10.4f %10.1f %12.1f%n", r.get("tile") + "x" + r.get("tile"), r.get("median_ms"),
                        (Double) r.get("pipelined_ms_per_tile") * batch,
                        r.containsKey("device_median_ms") ? String.format("%.1f", (Double) r.get("device_median_ms")) : "-",
                        r.get("megapixels_per_s"), r.get("gflop_per_s"), ((Long) r.get("peak_activation_bytes")) / 1048576.0);
                System.out.printf("%8s time by op (%%): %s%n", "", r.get("percent_by_op"));
                if (r.containsKey("conv_strategies")) System.out.printf("%8s convolution shapes by strategy: %s%n", "", r.get("conv_strategies"));
            }
            if (reloads != null) {
                System.out.printf("weights %.1f MiB: load from the file %.1f ms (%.2f GB/s), reload from the host copy %.2f ms (%.2f GB/s): %.1fx%n",
                        ((Long) reloads.get("weight_bytes")) / 1048576.0, reloads.get("load_from_file_ms"), reloads.get("load_gb_per_s"),
                        reloads.get("reload_from_host_copy_ms"), reloads.get("reload_gb_per_s"), reloads.get("reload_speedup"));
            }
        }
        return 0;
    }

    /**
     * The forward pass alone, as PyTorch's reference times it: the input already on the device, the
     * output left there, the clock stopped when the device is done. Null on the CPU, where there is no transfer.
     */
    private double[] deviceOnly(Session ops, GraphRunner runner, Tensor host) {
        if (!onDevice(ops)) return null;
        Tensor dev;
        try (var scope = ops.memory().tag("activations", "input")) {
            dev = ops.upload(host);
        }
        try {
            double[] ms = new double[runs];
            for (int i = 0; i < runs; i++) {
                long t0 = System.nanoTime();
                runner.run(dev, out -> {
                    ops.synchronize();
                    return null;
                });
                ms[i] = (System.nanoTime() - t0) / 1e6;
            }
            Arrays.sort(ms);
            return ms;
        } finally {
            ops.release(dev);
        }
    }

    /**
     * Where a run one at a time spends its time, medians over {@code runs}: "issue" from the call to
     * the last op queued (input conversion and upload, arena, issuing or replaying the pass), "device"
     * waiting for the device after that, "home" the output's copy and conversion to floats, "release"
     * the rest of the call. Null on the CPU.
     */
    private Map<String, Double> phases(Session ops, GraphRunner runner, Tensor host) {
        if (!onDevice(ops)) return null;
        double[][] ms = new double[4][runs];
        for (int run = 0; run < runs; run++) {
            long[] at = new long[4];
            at[0] = System.nanoTime();
            runner.run(host, out -> {
                at[1] = System.nanoTime();
                ops.synchronize();
                at[2] = System.nanoTime();
                Tensor home = ops.download(out);
                at[3] = System.nanoTime();
                return home;
            });
            long end = System.nanoTime();
            for (int k = 0; k < 4; k++) ms[k][run] = ((k < 3 ? at[k + 1] : end) - at[k]) / 1e6;
        }
        Map<String, Double> out = new LinkedHashMap<>();
        String[] names = {"issue", "device", "home", "release"};
        for (int k = 0; k < 4; k++) {
            Arrays.sort(ms[k]);
            out.put(names[k], round(ms[k][runs / 2]));
        }
        return out;
    }

    /** Whether {@code ops} runs on a device, with transfers to time (the CPU backend has none). */
    private static boolean onDevice(Session ops) {
        return ops.device().accelerator();
    }

    private static double round(double v) {
        return Math.round(v * 1000) / 1000.0;
    }
}
