package dev.headroom.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.Weights;
import dev.headroom.core.graph.Graph;
import dev.headroom.core.image.FloatImage;
import dev.headroom.core.image.Resample;
import dev.headroom.core.tiling.AxisSpan;
import dev.headroom.core.tiling.TileGrid;
import dev.headroom.runtime.cpu.CpuOps;
import dev.headroom.testing.Randoms;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Streamed output (rows given away as soon as every tile touching them is blended) against the
 * whole-image path: a plain reference that blends every tile into one full-size accumulator.
 */
class StreamedUpscaleTest {
    private final Random rnd = new Random(Randoms.seed());

    private FloatImage randomImage(int w, int h, int c) {
        float[] d = new float[w * h * c];
        for (int i = 0; i < d.length; i++) d[i] = rnd.nextFloat();
        return new FloatImage(w, h, c, d, 8);
    }

    /** The whole-image path: every tile run alone and added into a full-size image with its weights. */
    private static FloatImage wholeImageReference(GraphRunner runner, FloatImage in, int tile, int overlap, float range) {
        int r = runner.graph().scale(), oc = runner.graph().outputChannels();
        FloatImage out = FloatImage.blank(in.width() * r, in.height() * r, oc, in.bitDepth());
        for (AxisSpan sy : TileGrid.axis(in.height(), tile, overlap, r))
            for (AxisSpan sx : TileGrid.axis(in.width(), tile, overlap, r)) {
                Tensor x = Tensor.allocate(1, sy.length(), sx.length(), in.channels());
                for (int y = 0; y < sy.length(); y++)
                    for (int xx = 0; xx < sx.length(); xx++)
                        for (int c = 0; c < in.channels(); c++) x.data[x.index(0, y, xx) + c] = in.get(sx.start() + xx, sy.start() + y, c) * range;
                Tensor y = runner.run(x);
                for (int py = 0; py < y.h; py++)
                    for (int px = 0; px < y.w; px++) {
                        float w = sy.weight(py) * sx.weight(px);
                        for (int c = 0; c < oc; c++) {
                            int i = ((sy.start() * r + py) * out.width() + sx.start() * r + px) * oc + c;
                            out.data()[i] += w * (y.data[y.index(0, py, px) + c] * (1f / range));
                        }
                    }
            }
        return out;
    }

    @Test
    void streamedRowsEqualTheWholeImagePathForOddSizesAndTileLayouts() {
        Graph g = GraphRunnerTest.denseGraph();
        Weights w = GraphRunnerTest.randomWeights(g, rnd);
        int[][] cases = {{61, 45, 20, 6, 1}, {23, 17, 64, 8, 1}, {37, 50, 13, 5, 3}, {9, 31, 9, 0, 2}, {40, 41, 16, 15, 4}};
        for (int[] k : cases) {
            try (CpuOps ops = new CpuOps(); GraphRunner runner = new GraphRunner(g, w, ops)) {
                FloatImage img = randomImage(k[0], k[1], 3);
                FloatImage reference = wholeImageReference(runner, img, k[2], k[3], 255f);
                TiledUpscaler up = new TiledUpscaler(runner, 255f);
                up.batch(k[4]);
                List<int[]> bands = new ArrayList<>();
                int rowLength = reference.width() * reference.channels();
                float[] got = new float[reference.data().length];
                int[] next = {0};
                up.upscale(img, k[2], k[3], null, (data, offset, rows) -> {
                    System.arraycopy(data, offset, got, next[0] * rowLength, rows * rowLength);
                    bands.add(new int[] {next[0], rows});
                    next[0] += rows;
                });
                String what = k[0] + "x" + k[1] + " tile " + k[2] + " overlap " + k[3] + " batch " + k[4];
                assertArrayEquals(reference.data(), got, what);
                int tileRows = TileGrid.axis(k[1], k[2], k[3], 1).size();
                assertEquals(tileRows, bands.size(), what + ": one band per tile row");
                for (int[] b : bands) assertTrue(b[1] <= TileGrid.axis(k[1], k[2], k[3], 1).getFirst().length() * g.scale(), what + ": a band is at most a tile row");
            }
        }
    }

    @Test
    void alphaAndGrayStreamAsTheWholeImageWouldHaveThem() {
        Graph g = GraphRunnerTest.denseGraph();
        Weights w = GraphRunnerTest.randomWeights(g, rnd);
        try (CpuOps ops = new CpuOps(); GraphRunner runner = new GraphRunner(g, w, ops)) {
            TiledUpscaler tiled = new TiledUpscaler(runner, 1f);
            ImageUpscaler up = new ImageUpscaler(tiled, 3);
            for (int c = 1; c <= 4; c++) {
                FloatImage img = randomImage(33, 29, c);
                FloatImage streamed = up.upscale(img, 12, 4, null);
                // the whole-image way: colour through the model, gray averaged back, alpha resampled whole
                boolean gray = c <= 2, alpha = c == 2 || c == 4;
                FloatImage color = img.channels(0, gray ? 1 : 3);
                FloatImage rgb = tiled.upscale(gray ? color.repeatChannel(3) : color, 12, 4, null);
                FloatImage expected = rgb;
                if (gray) {
                    expected = FloatImage.blank(rgb.width(), rgb.height(), 1, 8);
                    for (int p = 0; p < expected.pixels(); p++) {
                        expected.data()[p] = (rgb.data()[3 * p] + rgb.data()[3 * p + 1] + rgb.data()[3 * p + 2]) / 3f;
                    }
                }
                if (alpha) expected = FloatImage.stack(expected, Resample.bicubic(img.channels(c - 1, 1), rgb.width(), rgb.height()));
                assertArrayEquals(expected.data(), streamed.data(), c + " channels");
            }
        }
    }

    @Test
    void bandedBicubicEqualsTheWholeResample() {
        FloatImage img = randomImage(17, 13, 2);
        FloatImage whole = Resample.bicubic(img, 51, 40);
        Resample.Rows rows = new Resample.Rows(img, 51, 40);
        float[] band = new float[51 * 40 * 2];
        for (int y = 0; y < 40; ) {
            int n = Math.min(40 - y, 1 + rnd.nextInt(9));
            rows.rows(y, n, band);
            for (int i = 0; i < n * 51 * 2; i++) assertEquals(whole.data()[y * 51 * 2 + i], band[i], "row " + (y + i / 102));
            y += n;
        }
    }
}
