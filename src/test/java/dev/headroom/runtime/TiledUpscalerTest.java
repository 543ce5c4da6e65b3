package dev.headroom.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.MapWeights;
import dev.headroom.core.Weights;
import dev.headroom.core.graph.Graph;
import dev.headroom.core.graph.GraphBuilder;
import dev.headroom.core.image.FloatImage;
import dev.headroom.core.tiling.TileGrid;
import dev.headroom.runtime.cpu.CpuOps;
import dev.headroom.testing.Randoms;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class TiledUpscalerTest {
    private final Random rnd = new Random(Randoms.seed());

    private FloatImage randomImage(int w, int h, int c) {
        float[] d = new float[w * h * c];
        for (int i = 0; i < d.length; i++) d[i] = rnd.nextFloat();
        return new FloatImage(w, h, c, d, 8);
    }

    @Test
    void oneTileOverTheWholeImageIsExactlyTheUntiledResult() {
        Graph g = GraphRunnerTest.denseGraph();
        Weights w = GraphRunnerTest.randomWeights(g, rnd);
        GraphRunner runner = new GraphRunner(g, w, new CpuOps());
        FloatImage img = randomImage(23, 17, 3);
        FloatImage tiled = new TiledUpscaler(runner, 255f).upscale(img, 64, 8, null);
        // untiled, by hand: scale to the model's range, run, scale back
        float[] in = img.data().clone();
        for (int i = 0; i < in.length; i++) in[i] *= 255f;
        float[] out = runner.run(Tensor.wrap(in, 1, 17, 23, 3)).toArray();
        for (int i = 0; i < out.length; i++) out[i] = out[i] * (1f / 255f);
        assertArrayEquals(out, tiled.data());
    }

    @Test
    void batchedTilesGiveExactlyTheTileByTileResult() {
        Graph g = GraphRunnerTest.denseGraph();
        Weights w = GraphRunnerTest.randomWeights(g, rnd);
        FloatImage img = randomImage(61, 45, 3);
        FloatImage one;
        try (CpuOps ops = new CpuOps(); GraphRunner runner = new GraphRunner(g, w, ops)) {
            one = new TiledUpscaler(runner, 1f).upscale(img, 20, 6, null);
        }
        for (int batch : new int[] {2, 3, 7, 100}) {
            try (CpuOps ops = new CpuOps(); GraphRunner runner = new GraphRunner(g, w, ops)) {
                TiledUpscaler up = new TiledUpscaler(runner, 1f);
                up.batch(batch);
                int[] seen = {0};
                FloatImage batched = up.upscale(img, 20, 6, (done, total) -> assertEquals(++seen[0], done));
                assertArrayEquals(one.data(), batched.data(), "batch " + batch + ": each tile is computed the same way, alone or stacked");
                assertEquals(TileGrid.count(61, 45, 20, 6), seen[0], "progress told once per tile");
                assertEquals(0, up.batchHalvings());
            }
        }
    }

    @Test
    void tilesOfAPointwiseModelBlendWithoutSeams() {
        // nearest upsampling has no context, so every tile agrees with every other: any seam is a blend error
        GraphBuilder b = new GraphBuilder(3);
        Graph g = b.build(b.upsample("up", b.input(), 3));
        GraphRunner runner = new GraphRunner(g, new MapWeights(Map.of(), "none"), new CpuOps());
        FloatImage img = randomImage(50, 37, 3);
        FloatImage whole = new TiledUpscaler(runner, 1f).upscale(img, 64, 0, null);
        for (int[] t : new int[][] {{16, 4}, {13, 6}, {20, 19}, {9, 0}}) {
            FloatImage tiled = new TiledUpscaler(runner, 1f).upscale(img, t[0], t[1], null);
            for (int i = 0; i < whole.data().length; i++) {
                assertEquals(whole.data()[i], tiled.data()[i], 1e-5, "tile " + t[0] + " overlap " + t[1] + " at " + i);
            }
        }
    }

    @Test
    void overlapBringsTilesCloseToTheUntiledResult() {
        Graph g = GraphRunnerTest.denseGraph();
        Weights w = GraphRunnerTest.randomWeights(g, rnd);
        GraphRunner runner = new GraphRunner(g, w, new CpuOps());
        FloatImage img = randomImage(40, 40, 3);
        FloatImage whole = new TiledUpscaler(runner, 1f).upscale(img, 40, 0, null);
        double errNoOverlap = maxDiff(whole, new TiledUpscaler(runner, 1f).upscale(img, 16, 0, null));
        double errOverlap = maxDiff(whole, new TiledUpscaler(runner, 1f).upscale(img, 16, 8, null));
        System.out.printf("tiles of 16: max error %.4f without overlap, %.4f with 8 px overlap%n", errNoOverlap, errOverlap);
        assertTrue(errOverlap < errNoOverlap / 2, "overlap should at least halve the seam error");
    }

    /** Real-ESRGAN x2's shape in small: pixel unshuffle by 2, a 3x3 conv, nearest x4, a 1x1 conv back to RGB; takes only even sizes. */
    static Graph unshuffleGraph() {
        GraphBuilder b = new GraphBuilder(3);
        int x = b.pixelUnshuffle("unshuffle", b.input(), 2, dev.headroom.core.graph.ChannelOrder.TORCH);
        x = b.conv("body", x, 3, 8, dev.headroom.core.graph.Act.leakyRelu(0.2f));
        x = b.upsample("up", x, 4);
        return b.build(b.conv("last", x, 1, 3, dev.headroom.core.graph.Act.NONE));
    }

    @Test
    void aModelWithPixelUnshufflePadsAnOddImageByReflectionAndCropsTheOutput() {
        Graph g = unshuffleGraph();
        assertEquals(2, g.modulus());
        assertEquals(2, g.scale());
        GraphRunner runner = new GraphRunner(g, GraphRunnerTest.randomWeights(g, rnd), new CpuOps());
        int w = 37, h = 29;
        FloatImage img = randomImage(w, h, 3);
        // reference, as Real-ESRGAN does it: the image reflected to 38x30 (torch's 'reflect': the edge pixel not repeated), run whole, cropped
        float[] padded = new float[38 * 30 * 3];
        for (int y = 0; y < 30; y++) {
            for (int x = 0; x < 38; x++) {
                int sy = y < h ? y : 2 * h - 2 - y, sx = x < w ? x : 2 * w - 2 - x;
                for (int c = 0; c < 3; c++) padded[(y * 38 + x) * 3 + c] = img.data()[(sy * w + sx) * 3 + c];
            }
        }
        Tensor whole = runner.run(Tensor.wrap(padded, 1, 30, 38, 3));
        float[] expected = new float[2 * w * 2 * h * 3];
        float[] all = whole.toArray();
        for (int y = 0; y < 2 * h; y++) System.arraycopy(all, y * 76 * 3, expected, y * 2 * w * 3, 2 * w * 3);
        FloatImage one = new TiledUpscaler(runner, 1f).upscale(img, 64, 8, null);   // one 37x29 tile
        assertArrayEquals(expected, one.data());
        // odd tiles (the bug: "model gave (1,120,120,3) for a 61x61 tile at scale 2"), alone and batched
        for (int[] t : new int[][] {{13, 4}, {16, 5}, {9, 2}, {20, 7}}) {
            for (int batch : new int[] {1, 3}) {
                TiledUpscaler up = new TiledUpscaler(runner, 1f);
                up.batch(batch);
                FloatImage tiled = up.upscale(img, t[0], t[1], null);
                assertEquals(2 * w, tiled.width());
                assertEquals(2 * h, tiled.height());
                for (float v : tiled.data()) assertTrue(Float.isFinite(v));
            }
        }
    }

    @Test
    void tilesOfAnUnshuffleModelStartOnItsGridAndBlendToTheWholeResult() {
        // unshuffle, a 1x1 conv, shuffle, nearest x2: each 2x2 block of the input is mapped on its own, so tiles agree
        // wherever they are cut only if they start on the unshuffle's grid (a tile at an odd start would mix other pixels)
        GraphBuilder b = new GraphBuilder(3);
        int x = b.pixelUnshuffle("unshuffle", b.input(), 2, dev.headroom.core.graph.ChannelOrder.TORCH);
        x = b.conv("mix", x, 1, 12, dev.headroom.core.graph.Act.NONE);
        x = b.pixelShuffle("shuffle", x, 2, dev.headroom.core.graph.ChannelOrder.TORCH);
        Graph g = b.build(b.upsample("up", x, 2));
        GraphRunner runner = new GraphRunner(g, GraphRunnerTest.randomWeights(g, rnd), new CpuOps());
        for (int[] size : new int[][] {{51, 37}, {1, 1}, {3, 2}, {40, 9}}) {
            FloatImage img = randomImage(size[0], size[1], 3);
            FloatImage whole = new TiledUpscaler(runner, 1f).upscale(img, 64, 0, null);
            for (int[] t : new int[][] {{13, 4}, {9, 0}, {20, 19}, {11, 3}, {8, 2}}) {
                FloatImage tiled = new TiledUpscaler(runner, 1f).upscale(img, t[0], t[1], null);
                for (int i = 0; i < whole.data().length; i++) {
                    assertEquals(whole.data()[i], tiled.data()[i], 1e-5, size[0] + "x" + size[1] + " tile " + t[0] + " overlap " + t[1] + " at " + i);
                }
            }
        }
    }

    private static double maxDiff(FloatImage a, FloatImage b) {
        double m = 0;
        for (int i = 0; i < a.data().length; i++) m = Math.max(m, Math.abs(a.data()[i] - b.data()[i]));
        return m;
    }
}
