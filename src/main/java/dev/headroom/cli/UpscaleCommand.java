package dev.headroom.cli;

import dev.headroom.core.image.InputImage;
import dev.headroom.core.tiling.TileGrid;
import dev.headroom.models.Model;
import dev.headroom.models.image.Encoding;
import dev.headroom.models.image.ImageFiles;
import dev.headroom.models.image.ImageWriter;
import dev.headroom.runtime.GraphRunner;
import dev.headroom.runtime.ImageUpscaler;
import dev.headroom.runtime.TiledUpscaler;
import dev.headroom.runtime.Session;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "upscale", mixinStandardHelpOptions = true,
        description = "Upscales images tile by tile. Without --model, uses idealo's RDN psnr-small x2 (fetched with npm on first use).")
final class UpscaleCommand implements Callable<Integer> {

    enum Device { auto, cpu, cuda }

    @Parameters(paramLabel = "IN", arity = "1..*", description = "PNG or JPEG images")
    List<Path> inputs;

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "OUT",
            description = "Output file (.png, .jpg, .webp, .tif), or a folder (required for several inputs): IN's name with -xN and the format's extension")
    Path output;

    @picocli.CommandLine.Mixin
    ModelOptions models;

    @Option(names = "--tile", paramLabel = "N", description = "Tile size in input pixels (default: the largest that the memory plan fits in the device's budget)")
    Integer tile;

    @Option(names = "--batch", paramLabel = "N", description = "Tiles per run (default: on a GPU, small tiles are batched as far as the memory plan fits; 1 with --tile)")
    Integer batch;

    @Option(names = "--overlap", paramLabel = "N", defaultValue = "16", description = "Pixels neighbouring tiles share, blended (default: ${DEFAULT-VALUE})")
    int overlap;

    @picocli.CommandLine.Mixin
    SessionOptions session;

    @Option(names = "--value-range", paramLabel = "1|255",
            description = "The model's input and output range, when its file's convention is wrong for it")
    Float valueRange;

    @Option(names = "--max-pixels", paramLabel = "N", defaultValue = "100000000", description = "Refuse inputs with more pixels (default: ${DEFAULT-VALUE})")
    long maxPixels;

    @Option(names = "--lenient", description = "Read damaged images as ImageIO does (bad PNG CRCs, truncated files, decoder warnings) instead of refusing them")
    boolean lenient;

    @Option(names = "--ignore-orientation", description = "Upscale a JPEG's pixels as stored, ignoring its EXIF orientation")
    boolean ignoreOrientation;

    @Option(names = {"-q", "--quiet"}, description = "No progress bar")
    boolean quiet;

    @picocli.CommandLine.Mixin
    OutputOptions outputOptions;

    @picocli.CommandLine.Mixin
    OutputFormat outputFormat;


    @picocli.CommandLine.Mixin
    WeightsOption weightsOption;

    /** One line per image written, printed after the run succeeded. */
    private final List<String> done = new ArrayList<>();


    @Override
    public Integer call() throws IOException {
        if (tile != null && tile < 8) throw new Main.UsageError("--tile " + tile + " is too small; use at least 8");
        if (overlap < 0 || overlap > 4096) throw new Main.UsageError("--overlap " + overlap + " must be between 0 and 4096");
        if (tile != null && tile > 65536) throw new Main.UsageError("--tile " + tile + " is larger than any image headroom reads; use at most 65536");
        if (maxPixels < 1) throw new Main.UsageError("--max-pixels " + maxPixels + " must be at least 1");
        if (batch != null && batch < 1) throw new Main.UsageError("--batch " + batch + " must be at least 1 (tiles per run)");
        if (tile != null && overlap >= tile) throw new Main.UsageError("--overlap " + overlap + " must be at least 0 and less than --tile (" + tile + ")");
        if (output.toString().equals("-")) Outputs.requireWritable("-o", output, List.of());
        boolean toFolder = Files.isDirectory(output) || inputs.size() > 1;
        if (toFolder && !Files.isDirectory(output)) {
            throw new Main.UsageError(inputs.size() + " inputs need -o to be an existing folder; " + output + " is not one");
        }
        Path outDir = toFolder ? output : output.toAbsolutePath().getParent();
        if (outDir == null || !Files.isDirectory(outDir) || !Files.isWritable(outDir)) {
            throw new Main.UsageError("cannot write " + output + ": folder " + outDir + " does not exist or is not writable");
        }
        for (Path in : inputs) {
            ImageFiles.probe(in, maxPixels);   // every input's header before any work
        }
        Encoding encoding = toFolder ? outputFormat.forFolder() : outputFormat.forFile(output);

        long t0 = System.nanoTime();
        Model m = models.load();
        m = weightsOption.apply(m);
        if (valueRange != null) {
            if (valueRange != 1f && valueRange != 255f) throw new Main.UsageError("--value-range must be 1 or 255, not " + valueRange);
            m = m.withValueRange(valueRange, "--value-range");
        }
        Map<Path, Path> outs = outputs(m, toFolder, encoding);
        double loadSeconds = (System.nanoTime() - t0) / 1e9;
        Session ops = session.open();
        // images are written to temporary files and renamed into place only when every image and the trace are done:
        // a failed run leaves neither an image nor a trace
        Map<Path, Path> staged = new LinkedHashMap<>();
        try (GraphRunner runner = weightsOption.runner(m, ops)) {
            runner.bands(!models.wholeTensors);
            Map<String, Object> summary = run(m, ops, runner, outs, staged, encoding, loadSeconds);
            session.memory.writeTrace(ops);
            for (var e : staged.entrySet()) dev.headroom.runtime.TempFiles.commit(e.getKey(), e.getValue());
            done.forEach(System.err::println);   // said only once the files are in place
            if (summary != null) OutputOptions.printJson(summary);
            return 0;
        } finally {
            staged.keySet().forEach(dev.headroom.runtime.TempFiles::discard);
            ops.close();
        }
    }

    /** Each input's output file, refused before any work if one would overwrite an input, the model, the trace or another output. */
    private Map<Path, Path> outputs(Model m, boolean toFolder, Encoding encoding) {
        List<Path> protect = new ArrayList<>(inputs);
        if (models.file != null) protect.add(models.file);
        Map<Path, Path> outs = new LinkedHashMap<>();
        for (Path in : inputs) {
            Path out = toFolder ? output.resolve(stem(in) + "." + encoding.format().extension()) : output;
            Outputs.requireWritable(toFolder ? "output" : "-o", out, protect);
            if (outs.containsKey(in)) throw new Main.UsageError(in + " is given twice");
            outs.put(in, out);
            if (session.memory.trace != null && Outputs.same(session.memory.trace, out)) {
                throw new Main.UsageError("--memory-trace " + session.memory.trace + " is also the image output; give the trace another name");
            }
        }
        Outputs.requireDistinct(outs);
        if (session.memory.trace != null) Outputs.requireWritable("--memory-trace", session.memory.trace, protect);
        return outs;
    }

    /** Upscales every input into a temporary file (recorded in {@code staged}: temporary file to target); the --json summary, or null. */
    private Map<String, Object> run(Model m, Session ops, GraphRunner runner, Map<Path, Path> outs, Map<Path, Path> staged, Encoding encoding, double loadSeconds) throws IOException {
        TiledUpscaler tiled = new TiledUpscaler(runner, m.valueRange());
        ImageUpscaler up = new ImageUpscaler(tiled, m.graph().inputChannels());
        boolean bar = !quiet && !outputOptions.json && ProgressBar.terminal();

        List<Map<String, Object>> results = new ArrayList<>();
        for (Path in : inputs) {
            Path out = outs.get(in);
            long t1 = System.nanoTime();
            // a PNG or sequential JPEG decoded by rows as the tiles need them, else kept whole as 8/16-bit samples; floats only per tile as it is cut
            ImageFiles.Input input = ImageFiles.readInput(in, maxPixels, new ImageFiles.ReadOptions(lenient, ignoreOrientation));
            InputImage img = input.image();
            long read = System.nanoTime() - t1;
            var fit = this.tile != null ? null : fit(m, ops, runner, img);
            int tile = fit != null ? hostCapped(fit.tile(), overlap, img.width(), img.height(), m.scale(), m.graph().outputChannels()) : this.tile;
            int batch = this.batch != null ? this.batch : fit != null ? fit.batch() : 1;
            tiled.batch(batch);
            if (fit != null && batch == fit.batch()) runner.usePlan(batch, fit.tileHeight(), fit.tileWidth(), fit.plan());   // planned once, by the fitter
            int tiles = TileGrid.count(img.width(), img.height(), tile, overlap, m.graph().modulus());
            int outW = img.width() * m.scale(), outH = img.height() * m.scale();
            long device0 = tiled.deviceNanos(), blend0 = tiled.blendNanos(), sink0 = tiled.sinkNanos();
            long finish;
            Map<String, Object> phases = new LinkedHashMap<>();
            // rows go to a staged file as soon as they are final; a failure before finish() leaves no file
            Path staging = dev.headroom.runtime.TempFiles.create(out);
            staged.put(staging, out);
            try (img; ImageWriter writer = ImageWriter.open(staging, encoding, outW, outH, img.channels(), img.bitDepth())) {
                up.upscale(img, tile, overlap, bar ? new ProgressBar(System.err, in.getFileName().toString(), (long) outW * outH) : null, writer);
                long t2 = System.nanoTime();
                writer.finish();
                finish = System.nanoTime() - t2;
                phases.put("read", seconds(read));
                phases.put("device_wait", seconds(tiled.deviceNanos() - device0));
                phases.put("blend", seconds(tiled.blendNanos() - blend0));
                phases.put("rows_to_writer", seconds(tiled.sinkNanos() - sink0));
                phases.put("finish_write", seconds(finish));
                phases.put("encode_cpu_all_threads", seconds(writer.encodeNanos()));
                phases.put("file_write", seconds(writer.writeNanos()));
            }
            double secs = (System.nanoTime() - t1) / 1e9;
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("input", in.toString());
            r.put("output", out.toString());
            r.put("width", img.width());
            r.put("height", img.height());
            r.put("channels", img.channels());
            r.put("input_decode", input.decodedWhole() == null ? "rows, as the tiles need them" : "whole: " + input.decodedWhole());
            r.put("out_width", outW);
            r.put("out_height", outH);
            r.put("format", encoding.format().name().toLowerCase(java.util.Locale.ROOT));
            r.put("tile", tile);
            r.put("tiles", tiles);
            r.put("batch", batch);
            if (tiled.batch() != batch) r.put("batch_after_halving", tiled.batch());
            r.put("seconds", Math.round(secs * 1000) / 1000.0);
            r.put("megapixels_per_second", Math.round((double) outW * outH / 1e6 / secs * 1e4) / 1e4);
            r.put("phases_seconds", phases);
            results.add(r);
            if (tiled.tile() != tile) r.put("tile_after_shrinking", tiled.tile());
            if (!outputOptions.json && !quiet) {
                done.add(String.format("%s -> %s (%dx%d -> %dx%d, %d tiles, %.2f s)", in, out, img.width(), img.height(),
                        outW, outH, tiles, secs));
                if (tiled.batch() != batch) done.add(String.format("  ran out of memory at batch %d: halved to %d", batch, tiled.batch()));
                if (tiled.tile() != tile) done.add(String.format("  ran out of memory at tile %d: shrank to %d", tile, tiled.tile()));
            }
        }
        if (outputOptions.json) {
            Map<String, Object> summary = new LinkedHashMap<>();
            summary.put("model", m.file().toString());
            summary.put("architecture", m.family());
            summary.put("scale", m.scale());
            summary.put("device", ops.name());
            summary.put("overlap", overlap);
            summary.put("model_load_seconds", Math.round(loadSeconds * 1000) / 1000.0);
            summary.put("peak_activation_bytes", up.peakActivationBytes());
            summary.put("weight_bytes", m.parameters() * 4);
            summary.put("images", results);
            summary.put("memory", MemoryMixin.summary(ops));
            summary.put("session", ops.diagnostics());   // CUDA: how convolutions started and were chosen, the device's plan service
            return summary;
        }
        return null;
    }

    /** {@code held} (kernels as stored: 16-bit, int8, fp8, NF4) with streamed kernels taking only their slots. */
    private static dev.headroom.core.plan.DeviceModel heldAs(GraphRunner runner, dev.headroom.core.plan.DeviceModel held) {
        return runner.weightStream() == null ? held : runner.weightStream().memoryModel(held);
    }

    /**
     * The largest tile, then batch, whose memory plan fits the device's budget up to its critical
     * pressure threshold (the fitter of `headroom plan`).
     */
    private dev.headroom.core.plan.Fitter.Fit fit(Model m, Session ops, GraphRunner runner, InputImage img) {
        var memory = ops.memory();
        boolean gpu = ops.device().accelerator();
        try {
            return dev.headroom.core.plan.Fitter.fit(dev.headroom.core.plan.Fitter.Request.of(m.graph(), img.width(), img.height(),
                            memory.ledger().limit(), p -> heldAs(runner, ops.memoryModel().holding(m.weights())))
                    .withOverlap(overlap).withUsableFraction(memory.thresholds().critical()).withPrecisions(List.of(ops.precision()))
                    .withFlopsPerSecond(p -> PlanCommand.flopsPerSecond(gpu, p)).withBands(!models.wholeTensors)
                    .withBatchPixels(gpu ? dev.headroom.core.plan.Fitter.GPU_BATCH_PIXELS : 0)
                    .withOutputWindow(gpu && dev.headroom.runtime.TiledUpscaler.deviceBlend()
                            && dev.headroom.runtime.ImageUpscaler.mayBlendOnTheDevice(img.channels(), m.graph().inputChannels())));
        } catch (dev.headroom.core.plan.Fitter.NoFit e) {
            throw new Main.UsageError(e.getMessage());
        }
    }

    /** Host memory for the streamed output that the tile chosen without --tile may take; see {@link #hostCapped}. */
    static final long HOST_WINDOW_BYTES = 1L << 30;

    /**
     * The fitted tile, halved while one tile row of output as floats (the streaming window) and two
     * tiles' outputs on their way home would take more than {@link #HOST_WINDOW_BYTES}: a big GPU fits
     * 2048-pixel tiles, whose tile row of a 4096x4096 x4 output alone is 1.6 GB of host memory.
     */
    static int hostCapped(int tile, int overlap, int width, int height, int r, int oc) {
        while (tile > 64 && tile / 2 > overlap) {
            int th = TileGrid.axis(height, tile, overlap, 1).getFirst().length() * r;
            int tw = TileGrid.axis(width, tile, overlap, 1).getFirst().length() * r;
            long bytes = 4L * oc * ((long) width * r * th + 2L * tw * th);
            if (bytes <= HOST_WINDOW_BYTES) break;
            tile /= 2;
        }
        return tile;
    }

    private static double seconds(long nanos) {
        return Math.round(nanos / 1e6) / 1000.0;
    }

    private static String stem(Path p) {
        String n = p.getFileName().toString();
        int dot = n.lastIndexOf('.');
        return dot > 0 ? n.substring(0, dot) : n;
    }
}
