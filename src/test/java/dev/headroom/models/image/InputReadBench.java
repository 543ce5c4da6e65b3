package dev.headroom.models.image;

import dev.headroom.core.image.FloatImage;
import dev.headroom.core.image.InputImage;
import dev.headroom.core.image.Resample;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

/**
 * Host memory of reading a big input as upscale reads it (scripts/bench/input-read runs it): the
 * whole image as floats ({@link ImageFiles#read}, the path before issue 19's change) or kept as
 * samples ({@link ImageFiles#readSamples}), or a PNG or baseline JPEG decoded by rows as the tiler
 * reads it ({@link ImageFiles#readInput}, {@code rows}). One mode per JVM; prints one JSON line with the heap
 * the image retains (after full collections) and the process's peak RSS (VmHWM).
 *
 * <p>Usage: InputReadBench make SIZE out.png|out.jpg|out-exifN.jpg [photo] | InputReadBench floats|samples|rows in.png|in.jpg
 * (out-exifN.jpg: a baseline JPEG with EXIF orientation N, 2..8; out-icc.jpg: one with a display ICC profile)
 */
public final class InputReadBench {
    public static void main(String[] args) throws Exception {
        if (args[0].equals("make")) {
            int size = Integer.parseInt(args[1]);
            FloatImage src = ImageFiles.read(Path.of(args.length > 3 ? args[3] : "examples/astronaut.png"), Long.MAX_VALUE);
            if (src.channels() != 3) src = src.channels(0, 3);
            FloatImage img = Resample.bicubic(src, size, size);
            Random r = new Random(1);
            float[] d = img.data();
            for (int i = 0; i < d.length; i++) d[i] += (float) (r.nextGaussian() * 0.01);
            Path out = Path.of(args[2]);
            var turned = java.util.regex.Pattern.compile(".*-exif([2-8])\\.jpg").matcher(out.getFileName().toString());
            if (turned.matches()) {
                // a baseline JPEG with an EXIF orientation that turns it (whole path: decoded as samples, turned as read)
                Files.write(out, dev.headroom.testing.HostileFiles.jpegWithOrientation(ImageFiles.toBuffered(img), Integer.parseInt(turned.group(1))));
            } else if (out.toString().endsWith("-icc.jpg")) {
                // a baseline JPEG with an embedded display profile (TwelveMonkeys' Adobe RGB 1998 compatible one)
                var jpg = new java.io.ByteArrayOutputStream();
                if (!javax.imageio.ImageIO.write(ImageFiles.toBuffered(img), "jpeg", jpg)) throw new IllegalStateException("no JPEG writer");
                try (var icc = com.twelvemonkeys.imageio.color.ColorProfiles.class.getResourceAsStream("/profiles/ClayRGB1998.icc")) {
                    Files.write(out, dev.headroom.runtime.IccJpegInputTest.tagged(jpg.toByteArray(), icc.readAllBytes(), 65000));
                }
            } else if (out.toString().endsWith(".jpg")) {
                if (!javax.imageio.ImageIO.write(ImageFiles.toBuffered(img), "jpeg", out.toFile())) throw new IllegalStateException("no JPEG writer");
            } else {
                ImageFiles.writePng(img, out);
            }
            return;
        }
        Path file = Path.of(args[1]);
        if (args[0].equals("rows")) {
            rows(file);
            return;
        }
        long before = usedAfterGc();
        long t0 = System.nanoTime();
        InputImage img = args[0].equals("floats") ? ImageFiles.read(file, Long.MAX_VALUE)
                : ImageFiles.readSamples(file, Long.MAX_VALUE, ImageFiles.ReadOptions.STRICT);
        double seconds = (System.nanoTime() - t0) / 1e9;
        long retained = usedAfterGc() - before;
        System.out.printf("{\"mode\": \"%s\", \"image\": \"%dx%dx%d\", \"bits\": %d, \"class\": \"%s\", \"retained_heap_mb\": %.1f, \"peak_rss_mb\": %.1f, \"read_s\": %.2f}%n",
                args[0], img.width(), img.height(), img.channels(), img.bitDepth(), img.getClass().getSimpleName(),
                retained / 1e6, peakRssKb() / 1e3, seconds);
        java.lang.ref.Reference.reachabilityFence(img);
    }

    /**
     * A PNG or JPEG decoded by rows ({@link ImageFiles#readInput}) and read as the tiler reads it: bands of
     * 512 + 2 x 16 rows, each row's span as floats, rows above the band released. The heap it
     * retains is measured half way down, with a band held; the time includes every row's floats.
     */
    private static void rows(Path file) throws Exception {
        long before = usedAfterGc(), retained = 0;
        long t0 = System.nanoTime();
        ImageFiles.Input in = ImageFiles.readInput(file, Long.MAX_VALUE, ImageFiles.ReadOptions.STRICT);
        try (InputImage img = in.image()) {
            float[] row = new float[img.width() * img.channels()];
            for (int y0 = 0; y0 < img.height(); y0 += 512) {
                img.release(y0 - 16);
                for (int y = Math.max(0, y0 - 16); y < Math.min(img.height(), y0 + 512 + 16); y++) img.floats(y, 0, img.width(), row, 0);
                if (retained == 0 && y0 + 512 >= img.height() / 2) retained = usedAfterGc() - before;
            }
            double seconds = (System.nanoTime() - t0) / 1e9;
            System.out.printf("{\"mode\": \"rows\", \"image\": \"%dx%dx%d\", \"bits\": %d, \"class\": \"%s\", \"decoded_whole\": %s, \"retained_heap_mb_half_way\": %.1f, \"peak_rss_mb\": %.1f, \"read_s\": %.2f}%n",
                    img.width(), img.height(), img.channels(), img.bitDepth(), img.getClass().getSimpleName(),
                    in.decodedWhole() == null ? "null" : "\"" + in.decodedWhole() + "\"", retained / 1e6, peakRssKb() / 1e3, seconds);
        }
    }

    private static long usedAfterGc() {
        for (int i = 0; i < 3; i++) System.gc();
        return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    }

    /** VmHWM of /proc/self/status in kB (0 where there is none). */
    private static long peakRssKb() throws java.io.IOException {
        Path status = Path.of("/proc/self/status");
        if (!Files.exists(status)) return 0;
        for (String line : Files.readAllLines(status)) {
            if (line.startsWith("VmHWM:")) return Long.parseLong(line.replaceAll("[^0-9]", ""));
        }
        return 0;
    }
}
