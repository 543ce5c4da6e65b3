package dev.headroom.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.Weights;
import dev.headroom.core.graph.Graph;
import dev.headroom.core.image.FloatImage;
import dev.headroom.core.image.InputImage;
import dev.headroom.core.image.SampleImage;
import dev.headroom.models.image.ImageFiles;
import dev.headroom.runtime.cpu.CpuOps;
import dev.headroom.testing.Randoms;
import java.awt.Point;
import java.awt.Transparency;
import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.ComponentColorModel;
import java.awt.image.DataBuffer;
import java.awt.image.Raster;
import java.awt.image.WritableRaster;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Inputs kept as their 8/16-bit samples ({@link ImageFiles#readSamples}) and turned into floats per
 * tile give the same output, bit for bit, as inputs decoded whole into floats ({@link ImageFiles#read}),
 * and hold about a quarter (8-bit) or half (16-bit) of the heap.
 */
class SampleInputTest {
    private final Random rnd = new Random(Randoms.seed());
    @TempDir Path dir;

    /** A PNG of random samples: c channels (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) at 8 or 16 bits. */
    private Path randomPng(int w, int h, int c, int bits) throws Exception {
        int type = bits == 16 ? DataBuffer.TYPE_USHORT : DataBuffer.TYPE_BYTE;
        boolean alpha = c == 2 || c == 4;
        ColorSpace cs = ColorSpace.getInstance(c <= 2 ? ColorSpace.CS_GRAY : ColorSpace.CS_sRGB);
        ComponentColorModel cm = new ComponentColorModel(cs, alpha, false, alpha ? Transparency.TRANSLUCENT : Transparency.OPAQUE, type);
        WritableRaster raster = Raster.createInterleavedRaster(type, w, h, c, new Point(0, 0));
        int[] row = new int[w * c];
        for (int y = 0; y < h; y++) {
            for (int i = 0; i < row.length; i++) row[i] = rnd.nextInt(1 << bits);
            raster.setPixels(0, y, w, 1, row);
        }
        Path file = dir.resolve(w + "x" + h + "x" + c + "-" + bits + ".png");
        assertTrue(ImageIO.write(new BufferedImage(cm, raster, false, null), "png", file.toFile()));
        return file;
    }

    @Test
    void sampleInputsUpscaleBitForBitAsFloatInputsAt8And16BitsWithGrayAndAlpha() throws Exception {
        // {width, height, channels, bits, tile, overlap, batch}; odd sizes, tiles that do not divide them
        int[][] cases = {{37, 29, 3, 8, 13, 4, 1}, {41, 23, 3, 16, 16, 5, 2}, {19, 33, 4, 8, 11, 3, 1},
                {25, 21, 4, 16, 9, 2, 3}, {31, 17, 1, 8, 12, 4, 1}, {23, 27, 2, 16, 10, 3, 2}};
        for (boolean unshuffle : new boolean[] {false, true}) {
            Graph g = unshuffle ? TiledUpscalerTest.unshuffleGraph() : GraphRunnerTest.denseGraph();
            Weights w = GraphRunnerTest.randomWeights(g, rnd);
            for (int[] k : cases) {
                String what = k[0] + "x" + k[1] + " channels " + k[2] + " bits " + k[3] + " tile " + k[4] + " overlap " + k[5]
                        + (unshuffle ? " (pixel-unshuffle model, reflected padding)" : "");
                Path png = randomPng(k[0], k[1], k[2], k[3]);
                FloatImage floats = ImageFiles.read(png, Long.MAX_VALUE);
                InputImage samples = ImageFiles.readSamples(png, Long.MAX_VALUE, ImageFiles.ReadOptions.STRICT);
                assertInstanceOf(SampleImage.class, samples, what);
                assertEquals(floats.bitDepth(), samples.bitDepth(), what);
                assertArrayEquals(floats.data(), samples.toFloat().data(), what + ": the same floats");
                FloatImage a, b;
                try (CpuOps ops = new CpuOps(); GraphRunner runner = new GraphRunner(g, w, ops)) {
                    TiledUpscaler tiled = new TiledUpscaler(runner, 255f);
                    tiled.batch(k[6]);
                    ImageUpscaler up = new ImageUpscaler(tiled, 3);
                    a = up.upscale(floats, k[4], k[5], null);
                    b = up.upscale(samples, k[4], k[5], null);
                }
                assertEquals(a.channels(), b.channels(), what);
                assertArrayEquals(a.data(), b.data(), what + ": the same output");
                Path pa = dir.resolve("a.png"), pb = dir.resolve("b.png");
                ImageFiles.writePng(a, pa);
                ImageFiles.writePng(b, pb);
                assertArrayEquals(Files.readAllBytes(pa), Files.readAllBytes(pb), what + ": the same PNG bytes");
            }
        }
    }

    /** Heap retained by what {@code read} returns: used heap after full collections, with it held, less without. */
    private static long retained(java.util.concurrent.Callable<Object> read) throws Exception {
        long before = usedAfterGc();
        Object held = read.call();
        long after = usedAfterGc();
        java.lang.ref.Reference.reachabilityFence(held);
        return after - before;
    }

    private static long usedAfterGc() {
        for (int i = 0; i < 3; i++) System.gc();
        return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    }

    @Test
    void an8BitInputKeptAsSamplesRetainsAboutAQuarterOfTheFloatImagesHeap() throws Exception {
        // 1536x1536 RGB: 28.3 MB as floats, 7.1 MB as samples
        Path png = randomPng(1536, 1536, 3, 8);
        long floatBytes = Long.MAX_VALUE, sampleBytes = Long.MAX_VALUE;
        for (int i = 0; i < 2; i++) {   // the smaller of two measurements: another thread's garbage can only add
            floatBytes = Math.min(floatBytes, retained(() -> ImageFiles.read(png, Long.MAX_VALUE)));
            sampleBytes = Math.min(sampleBytes, retained(() -> ImageFiles.readSamples(png, Long.MAX_VALUE, ImageFiles.ReadOptions.STRICT)));
        }
        long pixels = 1536L * 1536 * 3;
        String what = "floats retain " + floatBytes + " bytes, samples " + sampleBytes;
        assertTrue(Math.abs(floatBytes - 4 * pixels) < pixels / 4, what + " (floats should be about " + 4 * pixels + ")");
        assertTrue(Math.abs(sampleBytes - pixels) < pixels / 4, what + " (samples should be about " + pixels + ")");
        double ratio = (double) sampleBytes / floatBytes;
        assertTrue(ratio > 0.2 && ratio < 0.3, what + ": ratio " + ratio);
    }

    @Test
    void a16BitInputKeptAsSamplesRetainsAboutHalfOfTheFloatImagesHeap() throws Exception {
        Path png = randomPng(1024, 1024, 3, 16);
        long floatBytes = Long.MAX_VALUE, sampleBytes = Long.MAX_VALUE;
        for (int i = 0; i < 2; i++) {
            floatBytes = Math.min(floatBytes, retained(() -> ImageFiles.read(png, Long.MAX_VALUE)));
            sampleBytes = Math.min(sampleBytes, retained(() -> ImageFiles.readSamples(png, Long.MAX_VALUE, ImageFiles.ReadOptions.STRICT)));
        }
        double ratio = (double) sampleBytes / floatBytes;
        assertTrue(ratio > 0.45 && ratio < 0.55, "floats retain " + floatBytes + " bytes, samples " + sampleBytes + ": ratio " + ratio);
    }
}
