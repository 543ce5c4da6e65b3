package dev.headroom.models.image;

import dev.headroom.core.image.FloatImage;
import dev.headroom.core.image.Resample;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import javax.imageio.ImageIO;

/**
 * Encoders side by side on one machine (scripts/bench/codecs runs it): the whole-image ImageIO
 * PNG writer against headroom's streamed parallel-deflate PNG at several levels, and JPEG, WebP
 * and TIFF. The image is a photograph (examples/) resampled to SIZE x SIZE with a little noise,
 * written band by band as upscale writes it. Prints one JSON line per encoder.
 *
 * <p>Usage: CodecBench [size] [photo] [formats...]
 */
public final class CodecBench {
    public static void main(String[] args) throws Exception {
        int size = args.length > 0 ? Integer.parseInt(args[0]) : 4096;
        Path photo = Path.of(args.length > 1 ? args[1] : "examples/astronaut.png");
        java.util.Set<String> only = new java.util.HashSet<>(java.util.Arrays.asList(args).subList(Math.min(2, args.length), args.length));
        FloatImage src = ImageFiles.read(photo, Long.MAX_VALUE);
        if (src.channels() != 3) src = src.channels(0, 3);
        FloatImage img = Resample.bicubic(src, size, size);
        Random r = new Random(1);
        float[] d = img.data();
        for (int i = 0; i < d.length; i++) d[i] += (float) (r.nextGaussian() * 0.01);
        Path dir = Files.createTempDirectory("codec-bench");
        System.out.printf("{\"image\": \"%s\", \"size\": %d, \"cores\": %d}%n", photo, size, Runtime.getRuntime().availableProcessors());
        for (int rep = 0; rep < 2; rep++) {   // the first round warms the JIT; both are printed
            if (only.isEmpty() || only.contains("imageio")) {
                Path out = dir.resolve("imageio.png");
                long t0 = System.nanoTime();
                var buffered = ImageFiles.toBuffered(img);
                long t1 = System.nanoTime();
                ImageIO.write(buffered, "png", out.toFile());
                long t2 = System.nanoTime();
                print(rep, "imageio-png", (t2 - t0) / 1e9, String.format("\"convert_s\": %.3f, ", (t1 - t0) / 1e9), Files.size(out), size);
            }
            for (int level : new int[] {1, 6}) {
                if (!only.isEmpty() && !only.contains("png")) continue;
                time(rep, "headroom-png-level" + level, img, new Encoding(ImageFormat.PNG, null, level), dir.resolve("h" + level + ".png"));
            }
            if (only.isEmpty() || only.contains("jpeg")) {
                Encoding jpeg = new Encoding(ImageFormat.JPEG, null, 1);
                time(rep, "headroom-jpeg-q92-streamed", img, jpeg, dir.resolve("o.jpg"));
                time(rep, "imageio-jpeg-q92", img, dir.resolve("i.jpg"), ImageIoWriter.open(dir.resolve("i.jpg"), jpeg, img.width(), img.height(), img.channels(), 8));
            }
            if (only.isEmpty() || only.contains("tiff")) {
                Encoding tiff = new Encoding(ImageFormat.TIFF, null, 1);
                time(rep, "headroom-tiff-deflate-streamed", img, tiff, dir.resolve("o.tif"));
                time(rep, "imageio-tiff-deflate", img, dir.resolve("i.tif"), ImageIoWriter.open(dir.resolve("i.tif"), tiff, img.width(), img.height(), img.channels(), 8));
            }
            if (size <= ImageIoWriter.WEBP_MAX && (only.isEmpty() || only.contains("webp"))) {
                time(rep, "libwebp-lossy-q90", img, new Encoding(ImageFormat.WEBP, 90, 1), dir.resolve("o.webp"));
            }
        }
        try (var files = Files.list(dir)) {
            for (Path f : files.toList()) Files.delete(f);
        }
        Files.delete(dir);
    }

    private static void time(int rep, String name, FloatImage img, Encoding enc, Path out) throws Exception {
        time(rep, name, img, out, ImageWriter.open(out, enc, img.width(), img.height(), img.channels(), 8));
    }

    private static void time(int rep, String name, FloatImage img, Path out, ImageWriter writer) throws Exception {
        long t0 = System.nanoTime();
        int band = 512, rowLength = img.width() * img.channels();
        try (ImageWriter w = writer) {
            for (int y = 0; y < img.height(); y += band) w.rows(img.data(), y * rowLength, Math.min(band, img.height() - y));
            w.finish();
        }
        print(rep, name, (System.nanoTime() - t0) / 1e9, "", Files.size(out), img.width());
    }

    private static void print(int rep, String name, double seconds, String extra, long bytes, int size) {
        System.out.printf("{\"round\": %d, \"encoder\": \"%s\", \"seconds\": %.3f, %s\"bytes\": %d, \"mp_per_s\": %.1f}%n",
                rep, name, seconds, extra, bytes, (double) size * size / 1e6 / seconds);
    }
}
