package dev.headroom.cli;

import dev.headroom.core.Precision;
import dev.headroom.core.Sizes;
import dev.headroom.core.plan.DeviceModel;
import dev.headroom.core.plan.Fitter;
import dev.headroom.core.plan.MemoryPlan;
import dev.headroom.models.Model;
import dev.headroom.models.SyntheticModels;
import dev.headroom.runtime.cpu.CpuMemoryModel;
import dev.headroom.runtime.gpu.CudaMemoryModel;
import dev.headroom.runtime.memory.Pressure;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import dev.headroom.core.residency.StreamSplit;
import dev.headroom.runtime.WeightStream;

/**
 * "Will this fit my card?": plans a job without running it (no GPU needed) and prints the
 * predicted peak, its parts, the tile and precision chosen and why larger ones were refused.
 */
@Command(name = "plan", mixinStandardHelpOptions = true,
        description = "Predicts a job's peak memory and fits tile and precision to a card, without running it (no GPU needed).")
final class PlanCommand implements Callable<Integer> {
    @Option(names = "--model", paramLabel = "FILE", description = "Model file; default: the default model")
    Path model;

    @Option(names = "--synthetic", paramLabel = "NAME", description = "A full-size architecture instead of a file: " + SyntheticModels.NAMES)
    String synthetic;

    @Option(names = "--size", required = true, paramLabel = "WxH", description = "Input image size in pixels, e.g. 4096x4096")
    String size;

    @Option(names = "--vram", paramLabel = "SIZE", description = "Memory of the card to plan for, e.g. 8GiB (a CUDA card is assumed)")
    String vram;

    @Option(names = "--device", paramLabel = "cpu|cuda|N", description = "Plan for this machine's CPU, or CUDA device N (default 0) and its memory")
    String device;

    @Option(names = "--dtype", paramLabel = "fp16|bf16|fp32", description = "Only this precision (default: fp16, then fp32 on CUDA; fp32 on the CPU)")
    String dtype;

    @Option(names = "--tile", paramLabel = "N", description = "Plan this tile instead of choosing one")
    int tile;

    @Option(names = "--whole-tensors", description = "Run every layer on whole tensors, not the high-resolution tail in row bands: more memory, for comparison")
    boolean wholeTensors;

    @Option(names = "--overlap", paramLabel = "N", defaultValue = "16", description = "Pixels neighbouring tiles share (default: ${DEFAULT-VALUE})")
    int overlap;

    @picocli.CommandLine.Mixin
    OutputOptions output;

    @picocli.CommandLine.Mixin
    WeightsOption weightsOption;

    /**
     * Sustained rates measured with `headroom bench --synthetic rrdbnet-x4 --tile 256`: H100 fp16
     * 2.35 TFLOP per tile in 10.7 ms with fused cuDNN graphs (the fitter's figure; the 40 ms this
     * said before was the legacy API's), fp32 in about 135 ms (not measured again since); the
     * 2-core CI machine about 80 GFLOP/s. Used only for the time estimate.
     */
    static double flopsPerSecond(boolean cuda, Precision p) {
        if (!cuda) return 80e9;
        return p == Precision.F32 ? 17e12 : 220e12;
    }

    /** 2^17: a 131072x131072 input is 17 gigapixels, far past any card; the plan is still cheap to make. */
    static final int MAX_SIDE = 1 << 17;

    @Override
    public Integer call() throws Exception {
        var m = java.util.regex.Pattern.compile("(\\d+)[xX](\\d+)").matcher(size.trim());
        if (!m.matches()) throw new Main.UsageError("--size " + size + ": write it as WIDTHxHEIGHT, e.g. 4096x4096");
        // checked as text and in 64 bits before anything is sized by it (the tile grid holds a weight per pixel of each side)
        if (m.group(1).length() > 9 || m.group(2).length() > 9 || Long.parseLong(m.group(1)) > MAX_SIDE || Long.parseLong(m.group(2)) > MAX_SIDE) {
            throw new Main.UsageError("--size " + size + ": each side must be at most " + MAX_SIDE + " pixels");
        }
        int width = Integer.parseInt(m.group(1)), height = Integer.parseInt(m.group(2));
        if (width < 1 || height < 1) throw new Main.UsageError("--size " + size + " has an empty side");
        if (vram != null && device != null && device.equals("cpu")) throw new Main.UsageError("--vram plans for a CUDA card; drop it or --device cpu");
        if (overlap < 0 || overlap > MAX_SIDE) throw new Main.UsageError("--overlap must be at least 0 and at most " + MAX_SIDE);
        if (tile < 0 || tile > MAX_SIDE) throw new Main.UsageError("--tile " + tile + " must be between 8 and " + MAX_SIDE);
        if (tile != 0 && tile <= overlap) throw new Main.UsageError("--tile " + tile + " must be larger than --overlap " + overlap);
        boolean cuda = device == null || !device.equals("cpu");
        long budget;
        String target;
        if (vram != null) {
            try {
                budget = Sizes.parseOption(vram);
            } catch (IllegalArgumentException e) {
                throw new Main.UsageError("--vram: " + e.getMessage());
            }
            target = "a CUDA card of " + Sizes.format(budget);
        } else if (!cuda) {
            budget = Runtime.getRuntime().maxMemory() / 4 * 3;
            target = "this CPU (" + Sizes.format(budget) + " of Java heap for activations)";
        } else {
            int ordinal = device == null ? 0 : parseOrdinal(device);
            try {
                var cu = dev.headroom.cuda.Driver.get();
                budget = cu.totalMemory(cu.device(ordinal));
                target = "cuda:" + ordinal + " " + cu.deviceName(cu.device(ordinal)) + " (" + Sizes.format(budget) + ")";
            } catch (dev.headroom.cuda.CudaUnavailable | dev.headroom.cuda.CudaException e) {
                throw new Main.UsageError("--device " + (device == null ? "0" : device) + ": " + e.getMessage() + "; give the card's memory with --vram SIZE instead");
            }
        }
        List<Precision> precisions;
        if (dtype != null) {
            Precision p;
            try {
                p = Precision.parse(dtype);
            } catch (IllegalArgumentException e) {
                throw new Main.UsageError("--dtype: " + e.getMessage());
            }
            if (!cuda && p != Precision.F32) throw new Main.UsageError("--dtype " + dtype + ": the CPU computes in fp32 only");
            precisions = List.of(p);
        } else {
            precisions = cuda ? List.of(Precision.F16, Precision.F32) : List.of(Precision.F32);
        }
        Model mod = weightsOption.apply(ModelOption.load(model, synthetic));
        if ("AutoencoderKL".equals(mod.family())) {
            return VaePlan.print(mod, width, height, budget, Pressure.Thresholds.DEFAULT.critical(), target, precisions, cuda, output.json);
        }
        Long weightBudget = weightsOption.budgetBytes();
        // with --weight-budget, the weights as the streaming planner would hold them (resident layers and slots)
        java.util.function.Function<Precision, WeightStream.Planned> streamed = p -> {
            DeviceModel held = (cuda ? (DeviceModel) new CudaMemoryModel(p) : CpuMemoryModel.INSTANCE).holding(mod.weights());
            try {
                return WeightStream.planned(held, mod.graph(), cuda ? StreamSplit.Cost.H200 : StreamSplit.Cost.CPU,
                        cuda ? WeightStream.GPU_TILE : WeightStream.CPU_TILE, weightBudget == null ? Long.MAX_VALUE : weightBudget);
            } catch (IllegalArgumentException e) {
                throw weightsOption.tooSmall(e);
            }
        };
        Fitter.Fit fit;
        try {
            fit = Fitter.fit(Fitter.Request.of(mod.graph(), width, height, budget, p -> streamed.apply(p).model())
                    .withOverlap(overlap).withUsableFraction(Pressure.Thresholds.DEFAULT.critical()).withPrecisions(precisions)
                    .withFlopsPerSecond(p -> flopsPerSecond(cuda, p)).withTile(tile).withBands(!wholeTensors)
                    .withBatchPixels(cuda ? Fitter.GPU_BATCH_PIXELS : 0)
                    .withOutputWindow(cuda && dev.headroom.runtime.TiledUpscaler.deviceBlend()));   // an RGB image's, as upscale blends it
        } catch (Fitter.NoFit e) {
            throw new Main.UsageError(e.getMessage());
        }
        MemoryPlan plan = fit.plan();
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("model", synthetic != null ? "synthetic " + synthetic : mod.file().toString());
        out.put("architecture", mod.family() + " " + mod.details());
        out.put("input", width + "x" + height);
        out.put("output", width * mod.scale() + "x" + height * mod.scale());
        out.put("target", target);
        out.put("budget_bytes", budget);
        out.put("usable_bytes", fit.usable());
        out.put("precision", fit.precision().toString());
        out.put("tile", fit.tile());
        out.put("tile_shape", fit.tileWidth() + "x" + fit.tileHeight());
        out.put("tiles", fit.tiles());
        out.put("batch", fit.batch());
        out.put("weights_bytes", plan.weights());
        out.put("weights_stored", mod.storedType());
        out.put("weights_stored_bytes", mod.weights().storedBytes());
        out.put("activation_arena_bytes", plan.arenaBytes());
        out.put("activation_lower_bound_bytes", plan.lowerBound());
        out.put("bands", plan.bands() == null ? 1 : plan.bands().count);
        out.put("bands_from", plan.bands() == null ? null : mod.graph().node(plan.bands().start).name());
        out.put("workspace_bytes", plan.persistent() + plan.scratch());
        out.put("input_bytes", plan.input());
        out.put("output_window_bytes", plan.output());
        out.put("predicted_peak_bytes", plan.peak());
        out.put("estimated_seconds", Math.round(fit.seconds() * 100) / 100.0);
        out.put("rejected", fit.rejected());
        WeightStream.Planned sp = weightBudget == null ? null : streamed.apply(fit.precision());
        boolean streaming = sp != null && sp.split().streamedCount() > 0;
        if (streaming) {
            StreamSplit split = sp.split();
            out.put("weights_streamed", Map.of("layers", split.streamedCount(), "of", split.resident().length, "slots", split.slots(),
                    "slot_bytes", split.slotBytes(), "resident_bytes", split.residentBytes(), "streamed_bytes_per_pass", split.streamedBytes(),
                    "modelled_pass_ms", Math.round(sp.passNanos() / 1e3) / 1e3, "modelled_resident_pass_ms", Math.round(sp.residentNanos() / 1e3) / 1e3));
        }
        if (output.json) {
            OutputOptions.printJson(out);
            return 0;
        }
        System.out.printf("%s, %s -> %s on %s%n", out.get("architecture"), out.get("input"), out.get("output"), target);
        System.out.printf("  weights            %12s  (stored: %s, %s%s)%n", Sizes.format(plan.weights()), mod.storedType(), Sizes.format(mod.weights().storedBytes()),
                cuda ? "; a CUDA device holds int8, fp8 and NF4 kernels compact, others in the compute precision" : "");
        if (streaming) {
            StreamSplit split = sp.split();
            System.out.printf("  streamed weights   %12s  (%d of %d layers through %d slots of %s, %s resident; cost model, a %d tile: %.2f ms a pass against %.2f ms resident)%n",
                    Sizes.format(split.streamedBytes()) + "/pass", split.streamedCount(), split.resident().length, split.slots(), Sizes.format(split.slotBytes()),
                    Sizes.format(split.residentBytes()), cuda ? WeightStream.GPU_TILE : WeightStream.CPU_TILE, sp.passNanos() / 1e6, sp.residentNanos() / 1e6);
        } else if (weightBudget != null) {
            System.out.printf("  streamed weights   %12s  (every kernel fits the --weight-budget)%n", "none");
        }
        System.out.printf("  activation arena   %12s  (lower bound %s: %d buffers share it)%n", Sizes.format(plan.arenaBytes()),
                Sizes.format(plan.lowerBound()), plan.buffers().size());
        if (plan.bands() != null) {
            System.out.printf("  row bands          %12d  (layers from '%s' to the output run band by band)%n", plan.bands().count,
                    mod.graph().node(plan.bands().start).name());
        }
        System.out.printf("  workspace          %12s%n", Sizes.format(plan.persistent() + plan.scratch()));
        System.out.printf("  input tile         %12s%n", Sizes.format(plan.input()));
        if (plan.output() > 0) System.out.printf("  output window      %12s  (one tile row of output rows, blended on the device)%n", Sizes.format(plan.output()));
        System.out.printf("  predicted peak     %12s  of %s usable (%.0f%% of %s)%n", Sizes.format(plan.peak()), Sizes.format(fit.usable()),
                100.0 * fit.usable() / budget, Sizes.format(budget));
        System.out.printf("  plan: %s, tile %d (%dx%d), %d tiles, batch %d (%s); about %.1f s%n", fit.precision(), fit.tile(),
                fit.tileWidth(), fit.tileHeight(), fit.tiles(), fit.batch(),
                fit.batch() == 1 ? "tiles run one at a time" : fit.batch() + " tiles per run", fit.seconds());
        for (String r : fit.rejected()) System.out.println("  not chosen: " + r);
        return 0;
    }

    private static int parseOrdinal(String s) {
        if (s.equals("cuda")) return 0;
        try {
            return Integer.parseInt(s);
        } catch (NumberFormatException e) {
            throw new Main.UsageError("--device " + s + ": use cpu, cuda or a CUDA device number");
        }
    }
}
