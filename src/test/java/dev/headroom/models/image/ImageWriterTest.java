package dev.headroom.models.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.image.FloatImage;
import dev.headroom.testing.Randoms;
import java.awt.image.BufferedImage;
import java.awt.image.Raster;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.zip.Adler32;
import javax.imageio.ImageIO;
import org.apache.commons.imaging.Imaging;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The streamed writers: a PNG written band by band with parallel deflate decodes, with ImageIO and
 * with Apache Commons Imaging (a second, independent decoder), to the same samples as the
 * whole-image ImageIO path ({@link ImageFiles#writePng}); JPEG, WebP and TIFF decode to the right
 * size; an unfinished writer leaves no file.
 */
class ImageWriterTest {
    @TempDir
    Path dir;

    private final Random rnd = new Random(Randoms.seed());

    /** Smooth gradients with noise and some out-of-range values (clamped), like a model's output. */
    private FloatImage image(int w, int h, int c, int bits) {
        FloatImage img = FloatImage.blank(w, h, c, bits);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < c; ch++) {
                    float v = (float) (0.5 + 0.45 * Math.sin(x * 0.05 + ch) * Math.cos(y * 0.03) + rnd.nextGaussian() * 0.03);
                    img.set(x, y, ch, rnd.nextInt(200) == 0 ? v * 3 - 1 : v);
                }
        return img;
    }

    /** Writes img through a streamed writer in bands of random heights. */
    private Path stream(FloatImage img, Encoding enc, String name) throws IOException {
        Path out = dir.resolve(name);
        int rowLength = img.width() * img.channels();
        try (ImageWriter w = ImageWriter.open(out, enc, img.width(), img.height(), img.channels(), img.bitDepth())) {
            for (int y = 0; y < img.height(); ) {
                int n = Math.min(img.height() - y, 1 + rnd.nextInt(Math.max(1, img.height() / 3)));
                // hand the band over at an offset inside a larger array, as the upscaler's window does
                float[] band = new float[(n + 1) * rowLength];
                System.arraycopy(img.data(), y * rowLength, band, rowLength, n * rowLength);
                w.rows(band, rowLength, n);
                java.util.Arrays.fill(band, Float.NaN);   // the writer must not read the band after the call
                y += n;
            }
            w.finish();
        }
        return out;
    }

    private static int[] samples(BufferedImage img) {
        Raster r = img.getRaster();
        return r.getPixels(0, 0, r.getWidth(), r.getHeight(), (int[]) null);
    }

    @Test
    void streamedPngDecodesToTheWholeImagePathsPixels() throws IOException {
        int[][] sizes = {{1, 1}, {3, 7}, {257, 131}, {640, 97}};
        for (int[] s : sizes)
            for (int c = 1; c <= 4; c++)
                for (int bits : new int[] {8, 16}) {
                    FloatImage img = image(s[0], s[1], c, bits);
                    String what = s[0] + "x" + s[1] + "x" + c + " " + bits + "-bit";
                    Path streamed = stream(img, Encoding.png(), "s.png");
                    Path whole = dir.resolve("w.png");
                    ImageFiles.writePng(img, whole);
                    BufferedImage a = ImageIO.read(streamed.toFile()), b = ImageIO.read(whole.toFile());
                    assertEquals(b.getColorModel().getPixelSize(), a.getColorModel().getPixelSize(), what);
                    assertArrayEquals(samples(b), samples(a), what + ": ImageIO decodes the same samples");
                    // the second decoder, Commons Imaging's own PNG reader, sees the same image in both files
                    BufferedImage ca = Imaging.getBufferedImage(streamed.toFile()), cb = Imaging.getBufferedImage(whole.toFile());
                    assertEquals(s[0], ca.getWidth(), what);
                    assertEquals(s[1], ca.getHeight(), what);
                    assertArrayEquals(cb.getRGB(0, 0, s[0], s[1], null, 0, s[0]), ca.getRGB(0, 0, s[0], s[1], null, 0, s[0]), what + ": second decoder");
                }
    }

    @Test
    void parallelDeflateIsValidAtEveryLevelAcrossManyPieces() throws IOException {
        // 1500x800 RGB: 3.6 MB of scanlines a band, so each band is several pieces on several threads
        FloatImage img = image(1500, 800, 3, 8);
        int[] expected = samples(ImageFiles.toBuffered(img));
        for (int level : new int[] {0, 1, 6, 9}) {
            Path p = stream(img, new Encoding(ImageFormat.PNG, null, level), "l" + level + ".png");
            assertArrayEquals(expected, samples(ImageIO.read(p.toFile())), "level " + level);
            assertArrayEquals(expected, samples(toRgb(Imaging.getBufferedImage(p.toFile()))), "level " + level + ", second decoder");
            if (level == 0) assertTrue(Files.size(p) > 1500L * 800 * 3, "level 0 stores");
            if (level == 1) assertTrue(Files.size(p) < 1500L * 800 * 3, "level 1 compresses");
        }
    }

    private static BufferedImage toRgb(BufferedImage img) {
        BufferedImage rgb = new BufferedImage(img.getWidth(), img.getHeight(), BufferedImage.TYPE_3BYTE_BGR);
        rgb.getGraphics().drawImage(img, 0, 0, null);
        BufferedImage out = new BufferedImage(img.getWidth(), img.getHeight(), BufferedImage.TYPE_INT_RGB);
        out.getGraphics().drawImage(rgb, 0, 0, null);
        // as interleaved R, G, B samples like an RGB PNG's raster
        BufferedImage same = new BufferedImage(img.getWidth(), img.getHeight(), BufferedImage.TYPE_3BYTE_BGR);
        same.getGraphics().drawImage(out, 0, 0, null);
        return same;
    }

    @Test
    void samplesFromADeviceWriteTheSameFileAsFloats() throws IOException {
        // what a backend that blends on the device sends: samples rounded as the writers round floats
        for (ImageFormat f : new ImageFormat[] {ImageFormat.PNG, ImageFormat.TIFF, ImageFormat.JPEG}) {
            for (int bits : f == ImageFormat.JPEG ? new int[] {8} : new int[] {8, 16}) {
                FloatImage img = image(301, 157, 3, bits);
                String what = f + " " + bits + "-bit";
                Encoding enc = new Encoding(f, null, 1);
                Path floats = stream(img, enc, "f." + f.extension());
                Path samples = dir.resolve("s." + f.extension());
                int rowValues = img.width() * 3;
                try (ImageWriter w = ImageWriter.open(samples, enc, img.width(), img.height(), 3, bits)) {
                    assertEquals(f == ImageFormat.JPEG ? 8 : bits, w.sampleBits(), what);
                    int bytes = w.sampleBits() / 8;
                    for (int y = 0; y < img.height(); ) {
                        int n = Math.min(img.height() - y, 1 + rnd.nextInt(40));
                        byte[] band = new byte[(n * rowValues + 5) * bytes];
                        for (int i = 0; i < n * rowValues; i++) {
                            int q = Math.round(Math.clamp(img.data()[y * rowValues + i], 0f, 1f) * (bytes == 1 ? 255f : 65535f));
                            if (bytes == 1) band[5 + i] = (byte) q;
                            else {
                                band[10 + 2 * i] = (byte) (q >>> 8);
                                band[10 + 2 * i + 1] = (byte) q;
                            }
                        }
                        w.sampleRows(band, 5 * bytes, n);
                        java.util.Arrays.fill(band, (byte) 0x77);   // the writer must not read the band after the call
                        y += n;
                    }
                    w.finish();
                }
                // the same samples (bands are cut differently, so PNG's deflate pieces, not its pixels, may differ)
                var a = ImageIO.read(floats.toFile()).getRaster();
                var c = ImageIO.read(samples.toFile()).getRaster();
                assertEquals(bits == 16 && f != ImageFormat.JPEG ? 16 : 8, c.getSampleModel().getSampleSize(0), what);
                assertArrayEquals(a.getPixels(0, 0, a.getWidth(), a.getHeight(), (int[]) null), c.getPixels(0, 0, c.getWidth(), c.getHeight(), (int[]) null), what);
            }
        }
    }

    @Test
    void adlerOfConcatenationFromTheParts() {
        for (int i = 0; i < 50; i++) {
            byte[] all = new byte[rnd.nextInt(200_000)];
            rnd.nextBytes(all);
            int cut = all.length == 0 ? 0 : rnd.nextInt(all.length + 1);
            Adler32 whole = new Adler32(), a = new Adler32(), b = new Adler32();
            whole.update(all);
            a.update(all, 0, cut);
            b.update(all, cut, all.length - cut);
            assertEquals(whole.getValue(), PngWriter.combine(a.getValue(), b.getValue(), all.length - cut), "cut at " + cut + " of " + all.length);
        }
    }

    @Test
    void anUnfinishedWriterLeavesNoFile() throws IOException {
        FloatImage img = image(300, 200, 3, 8);
        for (ImageFormat f : ImageFormat.values()) {
            Path out = dir.resolve("half." + f.extension());
            try (ImageWriter w = ImageWriter.open(out, new Encoding(f, null, 1), 300, 200, 3, 8)) {
                w.rows(img.data(), 0, 120);   // then the job fails: no finish()
            }
            assertFalse(Files.exists(out), f + ": no output");
            try (var files = Files.list(dir)) {
                assertEquals(0, files.filter(p -> p.getFileName().toString().startsWith(".half")).count(), f + ": no temporary file left");
            }
        }
    }

    @Test
    void jpegWebpAndTiffDecodeToTheRightSize() throws IOException {
        FloatImage rgb = image(301, 203, 3, 8), rgba = image(129, 67, 4, 16), gray = image(77, 31, 1, 8);
        for (Encoding e : new Encoding[] {new Encoding(ImageFormat.JPEG, null, 1), new Encoding(ImageFormat.JPEG, 50, 1),
                new Encoding(ImageFormat.WEBP, null, 1), new Encoding(ImageFormat.WEBP, 80, 1), new Encoding(ImageFormat.TIFF, null, 1)}) {
            for (FloatImage img : new FloatImage[] {rgb, rgba, gray}) {
                if (e.format() == ImageFormat.JPEG && img == rgba) continue;
                String what = e + " " + img.width() + "x" + img.height() + "x" + img.channels();
                Path p = stream(img, e, "o." + e.format().extension());
                BufferedImage back = ImageIO.read(p.toFile());
                assertEquals(img.width(), back.getWidth(), what);
                assertEquals(img.height(), back.getHeight(), what);
                assertEquals(img.channels() == 2 || img.channels() == 4, back.getColorModel().hasAlpha(), what + ": alpha kept");
                // lossless formats give the samples back; lossy ones stay close on average
                int[] got = samples(back), want = samples(ImageFiles.toBuffered(img));
                if (e.format() == ImageFormat.TIFF) assertArrayEquals(want, got, what);
                if (e.format() == ImageFormat.WEBP && e.quality() == null && img != rgba && img.channels() == back.getRaster().getNumBands()) {
                    assertArrayEquals(want, got, what);
                }
                if (e.format() == ImageFormat.JPEG && img == rgb) {
                    double err = 0;
                    for (int i = 0; i < got.length; i++) err += Math.abs(got[i] - want[i]);
                    assertTrue(err / got.length < 12, what + ": mean error " + err / got.length);
                }
            }
        }
    }

    @Test
    void streamedTiffDecodesToTheImagesSamplesWithAndWithoutAlphaAt8And16Bits() throws IOException {
        // 1100x700 RGB(A) 16-bit is 4.6-6.2 MB of samples: several 1 MiB strips, bands cut across them at random.
        // The expected samples come from the floats: the JDK's own TIFF writer loses the low byte of some
        // 16-bit samples with Deflate (seen here: 30231 written as 30208), so it is no reference.
        int[][] sizes = {{1, 1}, {3, 7}, {257, 131}, {1100, 700}};
        for (int[] sz : sizes)
            for (int c = 1; c <= 4; c++)
                for (int bits : new int[] {8, 16}) {
                    if (sz[0] == 1100 && c < 3) continue;
                    FloatImage img = image(sz[0], sz[1], c, bits);
                    String what = sz[0] + "x" + sz[1] + "x" + c + " " + bits + "-bit";
                    Path streamed = stream(img, new Encoding(ImageFormat.TIFF, null, 1), "s.tif");
                    int[] want = new int[img.data().length];
                    for (int i = 0; i < want.length; i++) want[i] = Math.round(Math.clamp(img.data()[i], 0f, 1f) * (bits == 8 ? 255f : 65535f));
                    BufferedImage got = ImageIO.read(streamed.toFile());
                    var r = got.getRaster();
                    assertEquals(c, r.getNumBands(), what);
                    assertEquals(bits, r.getSampleModel().getSampleSize(0), what);
                    assertEquals(c == 2 || c == 4, got.getColorModel().hasAlpha(), what + ": alpha");
                    assertArrayEquals(want, r.getPixels(0, 0, r.getWidth(), r.getHeight(), (int[]) null), what);
                    if (sz[0] == 1100) {
                        assertTrue(Files.size(streamed) < (long) sz[0] * sz[1] * c * bits / 8, what + ": compressed");
                        if (bits == 8) assertArrayEquals(samples(toRgb(got)), samples(toRgb(Imaging.getBufferedImage(streamed.toFile()))), what + ", second decoder");
                    }
                }
    }

    @Test
    void streamedJpegIsTheFileImageIoWritesFromTheWholeImage() throws IOException {
        // the same JDK encoder pulls rows from the streamed image: the same bytes, gray and RGB, across band splits
        for (int c : new int[] {1, 3})
            for (Integer quality : new Integer[] {null, 40}) {
                FloatImage img = image(523, 389, c, 8);
                Encoding jpeg = new Encoding(ImageFormat.JPEG, quality, 1);
                Path streamed = stream(img, jpeg, "s.jpg");
                Path whole = dir.resolve("w.jpg");
                try (ImageWriter w = ImageIoWriter.open(whole, jpeg, img.width(), img.height(), c, 8)) {
                    w.rows(img.data(), 0, img.height());
                    w.finish();
                }
                assertArrayEquals(Files.readAllBytes(whole), Files.readAllBytes(streamed), c + " channels, quality " + quality);
            }
    }

    @Test
    void formatsRefuseWhatTheyCannotHoldBeforeWriting() {
        Path jpg = dir.resolve("a.jpg"), webp = dir.resolve("a.webp");
        var e = assertThrows(ImageFiles.BadImage.class, () -> ImageWriter.open(jpg, new Encoding(ImageFormat.JPEG, null, 1), 10, 10, 4, 8));
        assertTrue(e.getMessage().contains("alpha"), e.getMessage());
        e = assertThrows(ImageFiles.BadImage.class, () -> ImageWriter.open(webp, new Encoding(ImageFormat.WEBP, null, 1), 16384, 10, 3, 8));
        assertTrue(e.getMessage().contains("16383"), e.getMessage());
        assertFalse(Files.exists(jpg));
        assertFalse(Files.exists(webp));
    }

    @Test
    void formatsAreKnownByExtensionAndName() {
        assertEquals(ImageFormat.JPEG, ImageFormat.ofExtension(Path.of("x/Photo.JPEG")));
        assertEquals(ImageFormat.TIFF, ImageFormat.ofExtension(Path.of("a.tif")));
        assertEquals(null, ImageFormat.ofExtension(Path.of("a.bmp")));
        assertEquals(ImageFormat.WEBP, ImageFormat.named("WebP"));
        assertEquals(ImageFormat.JPEG, ImageFormat.named("jpg"));
    }
}
