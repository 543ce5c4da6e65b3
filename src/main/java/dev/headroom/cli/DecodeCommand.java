package dev.headroom.cli;

import dev.headroom.core.Sizes;
import dev.headroom.core.image.FloatImage;
import dev.headroom.core.plan.LayerBands;
import dev.headroom.core.plan.MemoryPlan;
import dev.headroom.models.LatentFiles;
import dev.headroom.models.Vae;
import dev.headroom.models.VaeCodec;
import dev.headroom.models.image.ImageFiles;
import dev.headroom.runtime.Ops;
import dev.headroom.runtime.Session;
import dev.headroom.runtime.Tensor;
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

@Command(name = "decode", mixinStandardHelpOptions = true,
        description = "Decodes diffusion latents to images with a VAE (SD 1.x, SDXL, SD3, FLUX): whole where it fits, "
                + "else exactly tiled layer by layer (the same image, in bounded memory).")
final class DecodeCommand implements Callable<Integer> {
    @Parameters(paramLabel = "LATENT", arity = "1..*", description = "Latents [B, C, h, w]: safetensors (tensor 'latent' or the only one), .npy or PyTorch .pt")
    List<Path> inputs;

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "OUT",
            description = "Output .png (8-bit) or .npy (float32 [B, H, W, 3] in 0..1), or a folder for several images")
    Path output;

    @picocli.CommandLine.Mixin
    VaeOptions vae;

    @Option(names = "--tile", paramLabel = "N", description = "Decode exactly tiled, in bands of N output rows (default: whole if the memory plan fits the budget, else the largest bands that fit)")
    Integer tile;

    @picocli.CommandLine.Mixin
    SessionOptions session;

    @Option(names = "--repeat", paramLabel = "N", defaultValue = "1", description = "Decode each latent N times, reporting each time, then (whole) "
            + "time N forward passes on the device alone, as PyTorch's figures are taken. For timing: with N > 1 the first run is a warm-up that "
            + "times every convolution shape's ways to run (HEADROOM_CONV_TIMING=budget keeps the quick start)")
    int repeat;

    @Option(names = "--profile", description = "With --json: one more whole pass, waiting for the device after each layer, "
            + "reported as milliseconds per op and per layer shape (profile_ms_by_op, profile_ms_by_shape)")
    boolean profile;

    @Option(names = {"-q", "--quiet"}, description = "No progress lines")
    boolean quiet;

    @picocli.CommandLine.Mixin
    OutputOptions outputOptions;


    @Override
    public Integer call() throws IOException {
        if (tile != null && tile < 1) throw new Main.UsageError("--tile " + tile + " must be at least 1 (rows of output pixels per band)");
        for (Path in : inputs) {
            String problem = dev.headroom.models.InputFiles.problem(in);
            if (problem != null) throw new Main.UsageError(in + ": " + problem);
        }
        List<Tensor> latents = new ArrayList<>();
        int images = 0;
        for (Path in : inputs) {
            Tensor t = LatentFiles.read(in);
            latents.add(t);
            images += t.n;
        }
        boolean toFolder = Files.isDirectory(output) || images > 1;
        if (toFolder && !Files.isDirectory(output)) throw new Main.UsageError(images + " images need -o to be an existing folder; " + output + " is not one");
        Path outDir = toFolder ? output : output.toAbsolutePath().getParent();
        if (outDir == null || !Files.isDirectory(outDir) || !Files.isWritable(outDir)) throw new Main.UsageError("cannot write " + output + ": folder " + outDir + " does not exist or is not writable");
        if (!toFolder && !(output.toString().endsWith(".png") || output.toString().endsWith(".npy"))) throw new Main.UsageError("-o " + output + ": write .png or .npy");
        Vae v = vae.load();
        for (int i = 0; i < latents.size(); i++) {
            if (latents.get(i).c != v.config().latent()) {
                throw new Main.UsageError(inputs.get(i).getFileName() + ": latent has " + latents.get(i).c + " channels, but " + v.file().getFileName()
                        + " is a " + v.family().label + " VAE with " + v.config().latent() + " latent channels");
            }
        }
        Session ops = repeat > 1 ? openTimingEverything() : session.open();
        try (VaeCodec codec = new VaeCodec(v, ops, true, false)) {
            List<Map<String, Object>> results = new ArrayList<>();
            for (int i = 0; i < latents.size(); i++) {
                Tensor lat = latents.get(i);
                for (int b = 0; b < lat.n; b++) {
                    Tensor one = lat.n == 1 ? lat : Tensor.wrap(java.util.Arrays.copyOfRange(lat.toArray(), b * lat.h * lat.w * lat.c, (b + 1) * lat.h * lat.w * lat.c), 1, lat.h, lat.w, lat.c);
                    String stem = stem(inputs.get(i)) + (lat.n > 1 ? "-" + b : "");
                    Path out = toFolder ? output.resolve(stem + ".png") : output;
                    Outputs.requireWritable(toFolder ? "output" : "-o", out, inputs);
                    results.add(decodeOne(codec, ops, v, one, inputs.get(i), out));
                }
            }
            if (outputOptions.json) {
                Map<String, Object> summary = new LinkedHashMap<>();
                summary.put("model", v.file().toString());
                summary.put("vae", v.describe());
                summary.put("device", ops.name());
                summary.put("images", results);
                summary.put("memory", MemoryMixin.summary(ops));
                summary.putAll(ops.diagnostics());   // CUDA: convolution strategies, and why a pass could not be recorded
                OutputOptions.printJson(summary);
            }
            session.memory.writeTrace(ops);   // only for a run that succeeded
        } finally {
            ops.close();
        }
        return 0;
    }

    private Map<String, Object> decodeOne(VaeCodec codec, Ops ops, Vae v, Tensor lat, Path in, Path out) throws IOException {
        int rows = tile != null ? tile : bands(codec.decoder(), ops, lat.h, lat.w, "decoding");
        Tensor img = null;
        List<Double> times = new ArrayList<>();
        for (int k = 0; k < Math.max(1, repeat); k++) {
            long t0 = System.nanoTime();
            img = codec.decode(lat, rows);
            times.add(Math.round((System.nanoTime() - t0) / 1e5) / 1e4);
        }
        double secs = times.getLast();
        if (out.toString().endsWith(".npy")) {
            LatentFiles.writeNpy(img, out);
        } else {
            ImageFiles.writePng(new FloatImage(img.w, img.h, 3, img.toArray(), 8), out);
        }
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("input", in.toString());
        r.put("output", out.toString());
        r.put("latent", lat.w + "x" + lat.h + "x" + lat.c);
        r.put("size", img.w + "x" + img.h);
        r.put("mode", rows > 0 ? "tiled" : "whole");
        if (rows > 0) r.put("band_rows", rows);
        if (codec.lastBandRows() != rows) r.put("band_rows_after_shrinking", codec.lastBandRows());
        if (codec.lastBandRows() > 0) {
            r.put("stored_on_device_bytes", codec.lastStoredBytes()[0]);
            r.put("stored_in_host_bytes", codec.lastStoredBytes()[1]);
        } else {
            r.put("replays", codec.decoder().replays());
        }
        r.put("decode_seconds", secs);
        if (times.size() > 1) r.put("decode_seconds_each", times);
        if (rows == 0 && codec.lastBandRows() == 0 && repeat > 1) {
            List<Double> forward = new ArrayList<>();
            for (int k = 0; k < repeat; k++) {
                long t0 = System.nanoTime();
                codec.forward(lat);
                forward.add(Math.round((System.nanoTime() - t0) / 1e5) / 1e4);
            }
            r.put("forward_seconds_each", forward);
            r.put("forward_seconds_median", forward.stream().sorted().toList().get(forward.size() / 2));
        }
        if (profile && rows == 0 && codec.lastBandRows() == 0) r.putAll(profile(codec, lat));
        if (ops.memory() != null) r.put("allocated_peak_bytes", ops.memory().stats().allocatedPeak());
        if (!outputOptions.json && !quiet) {
            int used = codec.lastBandRows();
            System.err.printf("%s -> %s (%dx%d, %s, %.2f s)%n", in, out, img.w, img.h, used > 0 ? "exactly tiled in bands of " + used + " rows" : "whole", secs);
            if (used != rows) System.err.printf("  ran out of memory %s: shrank to bands of %d rows%n", rows > 0 ? "in bands of " + rows + " rows" : "whole", used);
        }
        return r;
    }

    /**
     * The session for a timed run (--repeat N > 1): its first decode, a warm-up, times every
     * convolution shape's ways to run before running it (as `bench` does), unless HEADROOM_CONV_TIMING
     * or -Dheadroom.conv-timing says otherwise; a single decode keeps the quick start (cuDNN's heuristic
     * choice first, timing later within a small share of the job). The property is read when the session
     * opens, and restored after.
     */
    private Session openTimingEverything() {
        String before = System.getProperty("headroom.conv-timing");
        if (before != null || System.getenv("HEADROOM_CONV_TIMING") != null) return session.open();
        System.setProperty("headroom.conv-timing", "full");
        try {
            return session.open();
        } finally {
            System.clearProperty("headroom.conv-timing");
        }
    }

    /** One whole pass waiting for the device after each layer: milliseconds by op, and by op and shape (largest first). */
    private static Map<String, Object> profile(VaeCodec codec, Tensor lat) {
        var runner = codec.decoder();
        runner.resetProfile();
        runner.profile(true);
        try {
            codec.forward(lat);
        } finally {
            runner.profile(false);
        }
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("profile_ms", Math.round(runner.nanosByOp().values().stream().mapToLong(Long::longValue).sum() / 1e4) / 100.0);
        p.put("profile_ms_by_op", millis(runner.nanosByOp()));
        p.put("profile_ms_by_shape", millis(runner.nanosByShape()));
        return p;
    }

    private static Map<String, Double> millis(Map<String, Long> nanos) {
        Map<String, Double> m = new LinkedHashMap<>();
        nanos.entrySet().stream().sorted(Map.Entry.<String, Long>comparingByValue().reversed())
                .forEach(e -> m.put(e.getKey(), Math.round(e.getValue() / 1e4) / 100.0));
        return m;
    }

    /**
     * 0 (whole) when the whole run's memory plan for an (h, w) input fits the budget, else the
     * largest band height (in output rows) whose tiled peak fits.
     */
    static int bands(dev.headroom.runtime.GraphRunner runner, Ops ops, int h, int w, String what) {
        var m = ops.memory();
        long usable = (long) (m.ledger().limit() * m.thresholds().critical());
        MemoryPlan whole = runner.plan(1, h, w);
        if (whole.peak() <= usable) return 0;
        int rows = LayerBands.fit(runner.graph(), h, w, ops.memoryModel(), whole.weights(), usable);
        if (rows == 0) {
            throw new Main.UsageError(what + " " + w + "x" + h + " needs more than the " + Sizes.format(usable)
                    + " usable even in bands of " + LayerBands.MIN_ROWS + " rows (weights " + Sizes.format(whole.weights()) + "); raise --vram-budget");
        }
        return rows;
    }

    static String stem(Path p) {
        String n = p.getFileName().toString();
        int dot = n.lastIndexOf('.');
        return dot > 0 ? n.substring(0, dot) : n;
    }
}
