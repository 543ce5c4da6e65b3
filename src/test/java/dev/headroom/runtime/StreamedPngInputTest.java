package dev.headroom.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.Weights;
import dev.headroom.core.graph.Graph;
import dev.headroom.core.image.FloatImage;
import dev.headroom.core.image.InputImage;
import dev.headroom.models.image.ImageFiles;
import dev.headroom.models.image.StreamedRows;
import dev.headroom.runtime.cpu.CpuOps;
import dev.headroom.testing.Randoms;
import java.awt.Point;
import java.awt.Transparency;
import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.ComponentColorModel;
import java.awt.image.DataBuffer;
import java.awt.image.IndexColorModel;
import java.awt.image.Raster;
import java.awt.image.WritableRaster;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.zip.CRC32;
import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageWriteParam;
import javax.imageio.ImageWriter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * PNG inputs decoded by rows as the tiler reads them ({@link ImageFiles#readInput}, {@link StreamedRows})
 * give the floats ImageIO's whole decode gives ({@link ImageFiles#readSamples}), bit for bit, and
 * the same upscaled output, while holding a few tile rows; files the row decoder does not take are
 * decoded whole and say why.
 */
class StreamedPngInputTest {
    private final Random rnd = new Random(Randoms.seed());
    @TempDir Path dir;

    /**
     * A PNG written by ImageIO: c channels (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) at 8 or 16 bits,
     * half the rows random and half smooth gradients, so the writer picks every filter type.
     */
    private Path png(int w, int h, int c, int bits, boolean interlaced) throws Exception {
        int type = bits == 16 ? DataBuffer.TYPE_USHORT : DataBuffer.TYPE_BYTE;
        boolean alpha = c == 2 || c == 4;
        ColorSpace cs = ColorSpace.getInstance(c <= 2 ? ColorSpace.CS_GRAY : ColorSpace.CS_sRGB);
        ComponentColorModel cm = new ComponentColorModel(cs, alpha, false, alpha ? Transparency.TRANSLUCENT : Transparency.OPAQUE, type);
        WritableRaster raster = Raster.createInterleavedRaster(type, w, h, c, new Point(0, 0));
        fill(raster, w, h, c, (1 << bits) - 1);
        return write(new BufferedImage(cm, raster, false, null), w + "x" + h + "x" + c + "-" + bits + (interlaced ? "-adam7" : "") + ".png", interlaced);
    }

    private void fill(WritableRaster raster, int w, int h, int c, int max) {
        int[] row = new int[w * c];
        for (int y = 0; y < h; y++) {
            for (int i = 0; i < row.length; i++) row[i] = y % 2 == 0 ? rnd.nextInt(max + 1) : (int) ((long) max * ((i / c + y + i % c * 7) % (w + h)) / (w + h));
            raster.setPixels(0, y, w, 1, row);
        }
    }

    /** An 8-bit palette PNG of {@code entries} colours, with a tRNS chunk of {@code alphas} entries when above 0. */
    private Path palettePng(int w, int h, int entries, int alphas) throws Exception {
        byte[] r = new byte[entries], g = new byte[entries], b = new byte[entries], a = new byte[entries];
        rnd.nextBytes(r);
        rnd.nextBytes(g);
        rnd.nextBytes(b);
        for (int i = 0; i < entries; i++) a[i] = i < alphas ? (byte) rnd.nextInt(256) : (byte) 255;
        a[0] = 0;   // fully transparent: its colour must survive too
        IndexColorModel icm = alphas > 0 ? new IndexColorModel(8, entries, r, g, b, a) : new IndexColorModel(8, entries, r, g, b);
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_BYTE_INDEXED, icm);
        WritableRaster raster = img.getRaster();
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) raster.setSample(x, y, 0, y % 3 == 0 ? rnd.nextInt(entries) : (x + y) % entries);
        return write(img, "palette-" + w + "x" + h + "-" + entries + "-" + alphas + ".png", false);
    }

    private Path write(BufferedImage img, String name, boolean interlaced) throws Exception {
        Path file = dir.resolve(name);
        ImageWriter writer = ImageIO.getImageWritersByFormatName("png").next();
        try (var out = ImageIO.createImageOutputStream(file.toFile())) {
            writer.setOutput(out);
            ImageWriteParam p = writer.getDefaultWriteParam();
            p.setProgressiveMode(interlaced ? ImageWriteParam.MODE_DEFAULT : ImageWriteParam.MODE_DISABLED);
            writer.write(null, new IIOImage(img, null, null), p);
        } finally {
            writer.dispose();
        }
        return file;
    }

    static ImageFiles.Input input(Path png) {
        return ImageFiles.readInput(png, Long.MAX_VALUE, ImageFiles.ReadOptions.STRICT);
    }

    private static FloatImage whole(Path png) {
        return ImageFiles.readSamples(png, Long.MAX_VALUE, ImageFiles.ReadOptions.STRICT).toFloat();
    }

    @Test
    void rowsDecodeToImageIosSamplesAt8And16BitsGrayAlphaRgbAndOpaquePalette() throws Exception {
        // {width, height, channels, bits}: odd sizes, one pixel wide or high
        int[][] cases = {{37, 29, 3, 8}, {41, 23, 3, 16}, {19, 33, 4, 8}, {25, 21, 4, 16}, {31, 17, 1, 8}, {23, 27, 1, 16},
                {17, 19, 2, 8}, {23, 13, 2, 16}, {1, 9, 3, 8}, {9, 1, 4, 16}, {1, 1, 1, 8}, {301, 7, 3, 8}};
        for (int[] k : cases) {
            Path png = png(k[0], k[1], k[2], k[3], false);
            check(png, k[2], k[3]);
        }
        check(palettePng(29, 23, 200, 0), 3, 8);
        check(palettePng(31, 7, 256, 0), 3, 8);
    }

    private static void check(Path png, int channels, int bits) {
        String what = png.getFileName().toString();
        ImageFiles.Input in = input(png);
        assertNull(in.decodedWhole(), what + " should stream");
        try (InputImage img = in.image()) {
            assertInstanceOf(StreamedRows.class, img, what);
            assertEquals(channels, img.channels(), what);
            assertEquals(bits, img.bitDepth(), what);
            FloatImage ref = whole(png);
            assertEquals(ref.channels(), img.channels(), what);
            assertArrayEquals(ref.data(), img.toFloat().data(), what + ": the same floats as ImageIO's samples");
            // row spans read as the tiler does, dropping rows behind it
            float[] got = new float[img.width() * channels], want = new float[got.length];
            for (int y = 0; y < img.height(); y++) {
                int x = y % img.width(), n = img.width() - x;
                img.floats(y, x, n, got, 0);
                System.arraycopy(ref.data(), (y * img.width() + x) * channels, want, 0, n * channels);
                assertArrayEquals(java.util.Arrays.copyOf(want, n * channels), java.util.Arrays.copyOf(got, n * channels), what + " row " + y);
                img.release(y);
            }
            assertTrue(((StreamedRows) img).heldRowsPeak() <= 2, what + ": held " + ((StreamedRows) img).heldRowsPeak() + " rows");
        }
    }

    @Test
    void streamedInputsUpscaleBitForBitAsWholeInputsHoldingAFewTileRows() throws Exception {
        // {width, height, channels, bits, tile, overlap, batch}: tall images, so the rows held are a small part of them
        int[][] cases = {{37, 120, 3, 8, 13, 4, 1}, {41, 97, 3, 16, 16, 5, 2}, {19, 90, 4, 8, 11, 3, 1}, {21, 77, 1, 16, 12, 4, 3},
                {23, 81, 2, 8, 10, 3, 2}};
        for (boolean unshuffle : new boolean[] {false, true}) {
            Graph g = unshuffle ? TiledUpscalerTest.unshuffleGraph() : GraphRunnerTest.denseGraph();
            Weights w = GraphRunnerTest.randomWeights(g, rnd);
            for (int[] k : cases) {
                String what = k[0] + "x" + k[1] + " channels " + k[2] + " bits " + k[3] + " tile " + k[4] + " overlap " + k[5] + " batch " + k[6]
                        + (unshuffle ? " (pixel-unshuffle model, reflected padding)" : "");
                Path png = png(k[0], k[1], k[2], k[3], false);
                InputImage samples = ImageFiles.readSamples(png, Long.MAX_VALUE, ImageFiles.ReadOptions.STRICT);
                FloatImage a, b;
                StreamedRows[] colour = new StreamedRows[1];
                try (InputImage streamed = input(png).image(); CpuOps ops = new CpuOps(); GraphRunner runner = new GraphRunner(g, w, ops)) {
                    TiledUpscaler tiled = new TiledUpscaler(runner, 255f);
                    tiled.batch(k[6]);
                    ImageUpscaler up = new ImageUpscaler(tiled, 3);
                    a = up.upscale(samples, k[4], k[5], null);
                    // what the tiler reads: the image itself, or the colour view ImageUpscaler makes of a gray or alpha image
                    InputImage seen = new Spy((StreamedRows) streamed, colour);
                    b = up.upscale(seen, k[4], k[5], null);
                }
                assertArrayEquals(a.data(), b.data(), what + ": the same output");
                int held = colour[0].heldRowsPeak(), bound = 2 * (k[4] + 2 * k[5]) + 4;
                assertTrue(held <= bound && held < k[1] / 2, what + ": held " + held + " rows of " + k[1] + " (bound " + bound + ")");
            }
        }
    }

    /** Passes an image through, remembering the streamed image the tiler ends up reading. */
    private record Spy(StreamedRows in, StreamedRows[] read) implements InputImage {
        @Override public int width() { return in.width(); }
        @Override public int height() { return in.height(); }
        @Override public int channels() { return in.channels(); }
        @Override public int bitDepth() { return in.bitDepth(); }
        @Override public void floats(int y, int x, int n, float[] dst, int off) {
            read[0] = in;
            in.floats(y, x, n, dst, off);
        }
        @Override public void release(int below) { in.release(below); }
        @Override public InputImage channels(int from, int count) { return new Spy(in.channels(from, count), read); }
        @Override public InputImage repeatChannel(int count) { return new Spy(in.repeatChannel(count), read); }
        @Override public FloatImage toFloat() { return in.toFloat(); }
    }

    @Test
    void filesTheRowDecoderDoesNotTakeAreDecodedWholeAndSayWhy() throws Exception {
        Path interlaced = png(33, 21, 3, 8, true);
        assertWhole(interlaced, "interlaced", ImageFiles.ReadOptions.STRICT);
        BufferedImage binary = new BufferedImage(19, 7, BufferedImage.TYPE_BYTE_BINARY);
        for (int y = 0; y < 7; y++) for (int x = 0; x < 19; x++) binary.getRaster().setSample(x, y, 0, (x * y) & 1);
        assertWhole(write(binary, "binary.png", false), "1-bit", ImageFiles.ReadOptions.STRICT);
        Path rgb = png(17, 13, 3, 8, false);
        assertWhole(withChunk(rgb, "tRNS", new byte[] {0, 1, 0, 2, 0, 3}), "tRNS", ImageFiles.ReadOptions.STRICT);
        assertWhole(rgb, "--lenient", new ImageFiles.ReadOptions(true, false));
        // ImageIO's expansion of a translucent palette rounds colours (199 became 198): kept whole for identical pixels
        assertWhole(palettePng(31, 17, 256, 256), "palette PNG with tRNS", ImageFiles.ReadOptions.STRICT);
        Path bmp = dir.resolve("x.bmp");
        ImageIO.write(new BufferedImage(16, 8, BufferedImage.TYPE_3BYTE_BGR), "bmp", bmp.toFile());
        assertWhole(bmp, "not a PNG or JPEG", ImageFiles.ReadOptions.STRICT);   // JPEGs: StreamedJpegInputTest
    }

    /** The file is read whole by {@link ImageFiles#readInput}, for a reason that names {@code reason}, to the whole path's floats. */
    static void assertWhole(Path file, String reason, ImageFiles.ReadOptions options) {
        ImageFiles.Input in = ImageFiles.readInput(file, Long.MAX_VALUE, options);
        assertNotNull(in.decodedWhole(), file + " should be decoded whole");
        assertTrue(in.decodedWhole().contains(reason), file + ": " + in.decodedWhole());
        assertTrue(!(in.image() instanceof StreamedRows), file.toString());
        assertArrayEquals(ImageFiles.readSamples(file, Long.MAX_VALUE, options).toFloat().data(), in.image().toFloat().data(), file.toString());
    }

    /** The PNG with a chunk added after IHDR (its CRC computed). */
    private Path withChunk(Path png, String type, byte[] data) throws Exception {
        byte[] src = Files.readAllBytes(png);
        ByteBuffer chunk = ByteBuffer.allocate(12 + data.length);
        chunk.putInt(data.length).put(type.getBytes(java.nio.charset.StandardCharsets.ISO_8859_1)).put(data);
        CRC32 crc = new CRC32();
        crc.update(chunk.array(), 4, 4 + data.length);
        chunk.putInt((int) crc.getValue());
        int at = 8 + 25;   // signature, IHDR
        byte[] out = new byte[src.length + chunk.capacity()];
        System.arraycopy(src, 0, out, 0, at);
        System.arraycopy(chunk.array(), 0, out, at, chunk.capacity());
        System.arraycopy(src, at, out, at + chunk.capacity(), src.length - at);
        Path file = dir.resolve(type + "-" + png.getFileName());
        Files.write(file, out);
        return file;
    }

    @Test
    void damagedImageDataWithValidCrcsFailsWithTheRowAndNoPartialOutput() throws Exception {
        Path png = png(64, 48, 3, 8, false);
        byte[] b = Files.readAllBytes(png);
        int idat = indexOf(b, "IDAT");
        int len = ByteBuffer.wrap(b, idat - 4, 4).getInt();
        for (int i = idat + 4 + len / 2; i < idat + 4 + len / 2 + 16; i++) b[i] ^= 0x5a;   // garble the deflate stream mid-way
        CRC32 crc = new CRC32();
        crc.update(b, idat, 4 + len);
        ByteBuffer.wrap(b, idat + 4 + len, 4).putInt((int) crc.getValue());
        Path bad = dir.resolve("garbled.png");
        Files.write(bad, b);
        try (InputImage img = input(bad).image()) {
            float[] row = new float[64 * 3];
            RuntimeException e = assertThrows(RuntimeException.class, () -> {
                for (int y = 0; y < 48; y++) img.floats(y, 0, 64, row, 0);
            });
            assertInstanceOf(ImageFiles.BadImage.class, e, e.toString());
            assertTrue(e.getMessage().contains("garbled.png") && e.getMessage().contains("row"), e.getMessage());
        }
    }

    private static int indexOf(byte[] b, String s) {
        byte[] t = s.getBytes(java.nio.charset.StandardCharsets.ISO_8859_1);
        outer:
        for (int i = 0; i + t.length <= b.length; i++) {
            for (int j = 0; j < t.length; j++) if (b[i + j] != t[j]) continue outer;
            return i;
        }
        return -1;
    }
}
