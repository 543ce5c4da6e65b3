package dev.headroom.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static dev.headroom.runtime.StreamedPngInputTest.assertWhole;
import static dev.headroom.runtime.StreamedPngInputTest.input;

import dev.headroom.core.Weights;
import dev.headroom.core.graph.Graph;
import dev.headroom.core.image.FloatImage;
import dev.headroom.core.image.InputImage;
import dev.headroom.models.image.ImageFiles;
import dev.headroom.models.image.StreamedRows;
import dev.headroom.runtime.cpu.CpuOps;
import dev.headroom.testing.HostileFiles;
import dev.headroom.testing.Randoms;
import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageTypeSpecifier;
import javax.imageio.ImageWriteParam;
import javax.imageio.ImageWriter;
import javax.imageio.metadata.IIOMetadata;
import javax.imageio.metadata.IIOMetadataNode;
import javax.imageio.stream.ImageOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.w3c.dom.Node;

/**
 * Sequential JPEG inputs decoded by rows as the tiler reads them ({@link ImageFiles#readInput},
 * {@link StreamedRows} over the JDK's libjpeg reader) give the samples of the whole decode
 * ({@link ImageFiles#readSamples}, TwelveMonkeys' reader) bit for bit, and the same upscaled
 * output, while holding a few rows; progressive, CMYK, ICC-tagged, EXIF-turned and --lenient reads
 * are decoded whole and say why; a truncated file fails with the whole path's message.
 */
class StreamedJpegInputTest {
    private final Random rnd = new Random(Randoms.seed());
    @TempDir Path dir;

    /** Half random, half smooth gradients: every coefficient range and clamping at both ends. */
    BufferedImage picture(int w, int h, boolean gray) {
        return picture(rnd, w, h, gray);
    }

    static BufferedImage picture(Random rnd, int w, int h, boolean gray) {
        BufferedImage img = new BufferedImage(w, h, gray ? BufferedImage.TYPE_BYTE_GRAY : BufferedImage.TYPE_3BYTE_BGR);
        int c = gray ? 1 : 3;
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                for (int b = 0; b < c; b++) {
                    int v = y % 2 == 0 ? rnd.nextInt(256) : (x * 255 / Math.max(1, w - 1) + b * 80 + y) % 256;
                    img.getRaster().setSample(x, y, b, v);
                }
            }
        }
        return img;
    }

    /**
     * A JPEG written by the JDK's writer with the luma sampling factors h x v (chroma 1 x 1: 2x2 is
     * 4:2:0, 2x1 4:2:2, 1x1 4:4:4), a restart interval in MCUs (0: none), progressive or not.
     */
    private Path jpeg(String name, BufferedImage img, int h, int v, int restart, boolean progressive, float quality) throws Exception {
        return jpeg(dir, name, img, h, v, restart, progressive, quality);
    }

    static Path jpeg(Path dir, String name, BufferedImage img, int h, int v, int restart, boolean progressive, float quality) throws Exception {
        ImageWriter writer = ImageIO.getImageWritersByFormatName("jpeg").next();
        Path file = dir.resolve(name);
        try (ImageOutputStream out = ImageIO.createImageOutputStream(file.toFile())) {
            writer.setOutput(out);
            ImageWriteParam p = writer.getDefaultWriteParam();
            p.setCompressionMode(ImageWriteParam.MODE_EXPLICIT);
            p.setCompressionQuality(quality);
            if (progressive) p.setProgressiveMode(ImageWriteParam.MODE_DEFAULT);
            IIOMetadata md = writer.getDefaultImageMetadata(ImageTypeSpecifier.createFromRenderedImage(img), p);
            String f = "javax_imageio_jpeg_image_1.0";
            IIOMetadataNode root = (IIOMetadataNode) md.getAsTree(f);
            IIOMetadataNode seq = (IIOMetadataNode) root.getElementsByTagName("markerSequence").item(0);
            var specs = root.getElementsByTagName("componentSpec");
            for (int i = 0; i < specs.getLength(); i++) {
                IIOMetadataNode spec = (IIOMetadataNode) specs.item(i);
                spec.setAttribute("HsamplingFactor", String.valueOf(i == 0 ? h : 1));
                spec.setAttribute("VsamplingFactor", String.valueOf(i == 0 ? v : 1));
            }
            if (restart > 0) {
                IIOMetadataNode dri = new IIOMetadataNode("dri");
                dri.setAttribute("interval", String.valueOf(restart));
                Node sos = root.getElementsByTagName("sos").item(0);
                seq.insertBefore(dri, sos);
            }
            md.setFromTree(f, root);
            writer.write(null, new IIOImage(img, null, md), p);
        } finally {
            writer.dispose();
        }
        return file;
    }

    @Test
    void rowsGiveTheWholeDecodesSamplesBitForBitHoldingAFewRows() throws Exception {
        // {width, height, gray, h, v, restart}: odd sizes against the 8/16-pixel MCUs, every subsampling, restart markers
        int[][] cases = {{1, 1, 0, 2, 2, 0}, {17, 9, 0, 2, 2, 0}, {33, 65, 0, 2, 2, 3}, {40, 31, 0, 1, 1, 0}, {35, 18, 0, 2, 1, 0},
                {29, 47, 0, 1, 2, 2}, {64, 48, 0, 2, 2, 0}, {23, 37, 1, 1, 1, 0}, {1, 70, 1, 1, 1, 1}, {70, 1, 0, 2, 2, 0}};
        for (int[] k : cases) {
            for (float q : new float[] {0.5f, 0.98f}) {
                String what = k[0] + "x" + k[1] + (k[2] == 1 ? " gray" : " colour " + k[3] + "x" + k[4]) + " restart " + k[5] + " quality " + q;
                Path file = jpeg(what.replace(' ', '_') + ".jpg", picture(k[0], k[1], k[2] == 1), k[3], k[4], k[5], false, q);
                ImageFiles.Input in = input(file);
                assertNull(in.decodedWhole(), what);
                FloatImage whole = ImageFiles.readSamples(file, Long.MAX_VALUE, ImageFiles.ReadOptions.STRICT).toFloat();
                try (InputImage img = in.image()) {
                    assertInstanceOf(StreamedRows.class, img, what);
                    assertEquals(whole.channels(), img.channels(), what);
                    assertEquals(8, img.bitDepth(), what);
                    int stride = img.width() * img.channels();
                    float[] row = new float[stride];
                    for (int y = 0; y < img.height(); y++) {
                        img.floats(y, 0, img.width(), row, 0);
                        assertArrayEquals(java.util.Arrays.copyOfRange(whole.data(), y * stride, (y + 1) * stride), row, what + ": row " + y);
                        img.release(y);
                    }
                    assertTrue(((StreamedRows) img).heldRowsPeak() <= 2, what + ": held " + ((StreamedRows) img).heldRowsPeak() + " rows");
                }
            }
        }
    }

    @Test
    void streamedJpegsUpscaleBitForBitAsWholeInputsHoldingAFewTileRows() throws Exception {
        // {width, height, gray, tile, overlap, batch}
        int[][] cases = {{37, 120, 0, 13, 4, 1}, {41, 97, 0, 16, 5, 2}, {21, 77, 1, 12, 4, 3}};
        Graph g = GraphRunnerTest.denseGraph();
        Weights w = GraphRunnerTest.randomWeights(g, rnd);
        for (int[] k : cases) {
            String what = k[0] + "x" + k[1] + (k[2] == 1 ? " gray" : " colour") + " tile " + k[3] + " overlap " + k[4] + " batch " + k[5];
            Path file = jpeg(what.replace(' ', '_') + ".jpg", picture(k[0], k[1], k[2] == 1), 2, 2, 0, false, 0.9f);
            InputImage samples = ImageFiles.readSamples(file, Long.MAX_VALUE, ImageFiles.ReadOptions.STRICT);
            FloatImage a, b;
            try (InputImage streamed = input(file).image(); CpuOps ops = new CpuOps(); GraphRunner runner = new GraphRunner(g, w, ops)) {
                TiledUpscaler tiled = new TiledUpscaler(runner, 255f);
                tiled.batch(k[5]);
                ImageUpscaler up = new ImageUpscaler(tiled, 3);
                a = up.upscale(samples, k[3], k[4], null);
                b = up.upscale(streamed, k[3], k[4], null);
                if (k[2] == 0) {
                    int held = ((StreamedRows) streamed).heldRowsPeak(), bound = 2 * (k[3] + 2 * k[4]) + 4;
                    assertTrue(held <= bound && held < k[1] / 2, what + ": held " + held + " rows of " + k[1] + " (bound " + bound + ")");
                }
            }
            assertArrayEquals(a.data(), b.data(), what + ": the same output");
        }
    }

    @Test
    void jpegsTheRowDecoderDoesNotTakeAreDecodedWholeAndSayWhy() throws Exception {
        BufferedImage pic = picture(37, 29, false);
        assertWhole(jpeg("progressive.jpg", pic, 2, 2, 0, true, 0.9f), "progressive", ImageFiles.ReadOptions.STRICT);
        Path turned = dir.resolve("turned.jpg");
        Files.write(turned, HostileFiles.jpegWithOrientation(pic, 6));
        assertWhole(turned, "EXIF orientation 6", ImageFiles.ReadOptions.STRICT);
        // orientation ignored: nothing turns it, so it streams
        assertNull(ImageFiles.readInput(turned, Long.MAX_VALUE, new ImageFiles.ReadOptions(false, true)).decodedWhole());
        Path cmyk = dir.resolve("cmyk.jpg");
        Files.write(cmyk, HostileFiles.cmykJpeg(19, 11, 10, 200, 30, 5));
        assertWhole(cmyk, "CMYK", new ImageFiles.ReadOptions(true, false));   // strict reading refuses it: TwelveMonkeys warns it has no profile
        // an sRGB ICC profile in an APP2 segment after JFIF's APP0: the whole path reads it unconverted, the JDK's reader
        // by rows would convert through it (other profiles stream: IccJpegInputTest)
        byte[] plain = Files.readAllBytes(jpeg("noicc.jpg", pic, 2, 2, 0, false, 0.9f));
        byte[] profile = java.awt.color.ICC_Profile.getInstance(ColorSpace.CS_sRGB).getData();
        var app2 = new java.io.ByteArrayOutputStream();
        app2.write(0xff);
        app2.write(0xe2);
        int len = 2 + 12 + 2 + profile.length;
        app2.write(len >> 8);
        app2.write(len & 0xff);
        app2.writeBytes("ICC_PROFILE\0".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
        app2.write(1);
        app2.write(1);
        app2.writeBytes(profile);
        int at = 4 + ((plain[4] & 0xff) << 8 | (plain[5] & 0xff));   // SOI, then APP0 (JFIF)
        var tagged = new java.io.ByteArrayOutputStream();
        tagged.write(plain, 0, at);
        tagged.writeBytes(app2.toByteArray());
        tagged.write(plain, at, plain.length - at);
        Path icc = dir.resolve("icc.jpg");
        Files.write(icc, tagged.toByteArray());
        assertWhole(icc, "sRGB ICC profile", ImageFiles.ReadOptions.STRICT);
        assertWhole(jpeg("plain.jpg", pic, 2, 2, 0, false, 0.9f), "--lenient", new ImageFiles.ReadOptions(true, false));
    }

    @Test
    void aTruncatedJpegFailsWithTheWholePathsMessageAndClosingStopsTheDecoder() throws Exception {
        Path file = jpeg("full.jpg", picture(64, 256, false), 2, 2, 0, false, 0.9f);
        byte[] b = Files.readAllBytes(file);
        Path cut = dir.resolve("cut.jpg");
        Files.write(cut, java.util.Arrays.copyOf(b, b.length * 2 / 3));
        ImageFiles.BadImage whole = assertThrows(ImageFiles.BadImage.class, () -> ImageFiles.readSamples(cut, Long.MAX_VALUE, ImageFiles.ReadOptions.STRICT));
        ImageFiles.Input in = input(cut);
        assertNull(in.decodedWhole(), "the header is intact, so it streams");
        float[] row = new float[64 * 3];
        ImageFiles.BadImage streamed;
        try (InputImage img = in.image()) {
            streamed = assertThrows(ImageFiles.BadImage.class, () -> {
                for (int y = 0; y < 256; y++) {
                    img.floats(y, 0, 64, row, 0);
                    img.release(y);
                }
            });
        }
        assertTrue(whole.getMessage().contains("the decoder warns"), whole.getMessage());
        assertEquals(whole.getMessage(), streamed.getMessage());
        // a reader that stops early: closing ends the decoding thread (it was blocked with rows ahead)
        try (InputImage img = input(file).image()) {
            img.floats(0, 0, 64, row, 0);
        }
        for (int i = 0; i < 100 && decoderThreads() > 0; i++) Thread.sleep(20);
        assertEquals(0, decoderThreads(), "decoding threads left after close");
    }

    private static long decoderThreads() {
        return Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().startsWith("jpeg-rows")).count();
    }
}
