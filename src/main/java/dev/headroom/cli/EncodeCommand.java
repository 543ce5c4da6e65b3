package dev.headroom.cli;

import dev.headroom.core.image.FloatImage;
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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "encode", mixinStandardHelpOptions = true,
        description = "Encodes images to diffusion latents with a VAE (the distribution's mean, scaled as the family's diffusion model expects).")
final class EncodeCommand implements Callable<Integer> {
    @Parameters(paramLabel = "IMAGE", arity = "1..*", description = "PNG or JPEG images, all of one size (a multiple of the VAE's scale, 8)")
    List<Path> inputs;

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "OUT.safetensors", description = "Latents, one tensor 'latent' [B, C, h, w]")
    Path output;

    @picocli.CommandLine.Mixin
    VaeOptions vae;

    @picocli.CommandLine.Mixin
    SessionOptions session;

    @Option(names = "--tile", paramLabel = "N", description = "Encode exactly tiled, in bands of N latent rows (default: whole if the memory plan fits the budget, else the largest bands that fit)")
    Integer tile;

    @Option(names = "--max-pixels", paramLabel = "N", defaultValue = "100000000", description = "Refuse inputs with more pixels (default: ${DEFAULT-VALUE})")
    long maxPixels;

    @picocli.CommandLine.Mixin
    OutputOptions outputOptions;


    @Override
    public Integer call() throws IOException {
        if (!output.toString().endsWith(".safetensors")) throw new Main.UsageError("-o " + output + ": latents are written as .safetensors");
        Path outDir = output.toAbsolutePath().getParent();
        if (outDir == null || !Files.isDirectory(outDir)) throw new Main.UsageError("cannot write " + output + ": folder " + outDir + " does not exist");
        Outputs.requireWritable("-o", output, inputs);
        Vae v = vae.load();
        int s = v.config().scale();
        FloatImage[] imgs = new FloatImage[inputs.size()];
        for (int i = 0; i < imgs.length; i++) {
            String problem = dev.headroom.models.InputFiles.problem(inputs.get(i));
            if (problem != null) throw new Main.UsageError(inputs.get(i) + ": " + problem);
            FloatImage im = ImageFiles.read(inputs.get(i), maxPixels);
            if (im.width() % s != 0 || im.height() % s != 0) {
                throw new Main.UsageError(inputs.get(i).getFileName() + " is " + im.width() + "x" + im.height() + "; the VAE needs sides that are multiples of " + s);
            }
            if (i > 0 && (im.width() != imgs[0].width() || im.height() != imgs[0].height())) {
                throw new Main.UsageError("images of different sizes (" + inputs.get(0).getFileName() + " and " + inputs.get(i).getFileName() + "); encode them separately");
            }
            imgs[i] = im.channels() == 3 ? im : im.channels() > 3 ? im.channels(0, 3) : im.channels(0, 1).repeatChannel(3);   // alpha dropped, gray repeated
        }
        if (tile != null && tile < 1) throw new Main.UsageError("--tile " + tile + " must be at least 1 (latent rows per band)");
        int w = imgs[0].width(), h = imgs[0].height(), c = v.config().latent();
        Session ops = session.open();
        Tensor latent = Tensor.allocate(imgs.length, h / s, w / s, c);
        int rows = 0;
        long t0 = System.nanoTime();
        try (VaeCodec codec = new VaeCodec(v, ops, false, true)) {
            rows = tile != null ? tile : DecodeCommand.bands(codec.encoder(), ops, h, w, "encoding");
            for (int i = 0; i < imgs.length; i++) {
                float[] one = codec.encode(Tensor.wrap(imgs[i].data(), 1, h, w, 3), rows).toArray();
                System.arraycopy(one, 0, latent.data, i * one.length, one.length);
            }
            rows = codec.lastBandRows();
            session.memory.writeTrace(ops);   // only for a run that succeeded
        } finally {
            ops.close();
        }
        double secs = (System.nanoTime() - t0) / 1e9;
        LatentFiles.writeSafetensors(latent, output, v.family().name().toLowerCase());
        if (outputOptions.json) {
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("model", v.file().toString());
            r.put("vae", v.describe());
            r.put("output", output.toString());
            r.put("latent_shape", List.of(latent.n, latent.c, latent.h, latent.w));
            r.put("mode", rows > 0 ? "tiled" : "whole");
            if (rows > 0) r.put("band_rows", rows);
            r.put("seconds", Math.round(secs * 1000) / 1000.0);
            OutputOptions.printJson(r);
        } else {
            System.err.printf("%d image(s) %dx%d -> %s [%d, %d, %d, %d] (%.2f s)%n", imgs.length, w, h, output, latent.n, latent.c, latent.h, latent.w, secs);
        }
        return 0;
    }
}
