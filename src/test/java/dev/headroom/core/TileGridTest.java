package dev.headroom.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.tiling.AxisSpan;
import dev.headroom.core.tiling.TileGrid;
import dev.headroom.testing.Randoms;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class TileGridTest {
    @Test
    void weightsSumToOneEverywhereAndTilesCoverTheAxis() {
        Random r = new Random(Randoms.seed());
        for (int trial = 0; trial < 500; trial++) {
            int size = 1 + r.nextInt(700), tile = 1 + r.nextInt(300), overlap = r.nextInt(tile), scale = 1 + r.nextInt(4);
            List<AxisSpan> spans = TileGrid.axis(size, tile, overlap, scale);
            double[] sum = new double[size * scale];
            for (AxisSpan s : spans) {
                assertTrue(s.start() >= 0 && s.start() + s.length() <= size, "span inside the image");
                assertEquals(spans.getFirst().length(), s.length(), "all tiles of an axis have one length");
                assertTrue(s.length() <= tile, "no tile is longer than asked");
                for (int p = 0; p < s.length() * scale; p++) {
                    assertTrue(s.weight(p) > 0 && s.weight(p) <= 1);
                    sum[s.start() * scale + p] += s.weight(p);
                }
            }
            for (int i = 1; i < spans.size(); i++) {
                int shared = spans.get(i - 1).start() + spans.get(i - 1).length() - spans.get(i).start();
                assertTrue(shared >= overlap, "neighbours share " + shared + " pixels, asked for " + overlap);
            }
            for (int p = 0; p < sum.length; p++) {
                assertEquals(1.0, sum[p], 1e-6, "size " + size + " tile " + tile + " overlap " + overlap + " at " + p);
            }
        }
    }

    @Test
    void withAModulusTilesStartOnItsGridRunAtOneLengthAndStillCoverTheAxis() {
        Random r = new Random(Randoms.seed());
        for (int trial = 0; trial < 500; trial++) {
            int m = new int[] {2, 4}[r.nextInt(2)];
            int size = 1 + r.nextInt(700), tile = m + r.nextInt(300), overlap = r.nextInt(tile), scale = 1 + r.nextInt(4);
            String what = "size " + size + " tile " + tile + " overlap " + overlap + " modulus " + m;
            List<AxisSpan> spans = TileGrid.axis(size, tile, overlap, scale, m);
            double[] sum = new double[size * scale];
            int run = TileGrid.padded(spans.getFirst().length(), m);
            for (AxisSpan s : spans) {
                assertEquals(0, s.start() % m, what + ": starts on the modulus' grid");
                assertTrue(s.start() >= 0 && s.start() + s.length() <= size, what + ": span inside the image");
                assertEquals(run, TileGrid.padded(s.length(), m), what + ": every tile runs at one shape");
                if (spans.size() > 1) assertTrue(run <= tile, what + ": no run longer than asked");
                for (int p = 0; p < s.length() * scale; p++) sum[s.start() * scale + p] += s.weight(p);
            }
            for (int i = 1; i < spans.size(); i++) {
                int shared = spans.get(i - 1).start() + spans.get(i - 1).length() - spans.get(i).start();
                assertTrue(shared >= Math.min(overlap, tile / m * m - m), what + ": neighbours share " + shared + " pixels");
            }
            for (int p = 0; p < sum.length; p++) assertEquals(1.0, sum[p], 1e-6, what + " at " + p);
        }
        // the case: 240 pixels in tiles of 64 with 16 overlap at x2 gave 61-pixel tiles
        for (AxisSpan s : TileGrid.axis(240, 64, 16, 2, 2)) assertEquals(0, s.length() % 2, "240 in tiles of 64: " + s.length());
        assertEquals(List.of(0), TileGrid.axis(61, 64, 16, 2, 2).stream().map(AxisSpan::start).toList());
        assertEquals(1, TileGrid.axis(61, 61, 16, 2, 2).size(), "an image that fits the tile is one tile, run at 62");
        assertEquals(62, TileGrid.padded(61, 2));
        assertEquals(64, TileGrid.padded(64, 4));
    }

    @Test
    void aSingleTileHasWeightExactlyOne() {
        List<AxisSpan> spans = TileGrid.axis(100, 128, 16, 4);
        assertEquals(1, spans.size());
        for (float w : spans.getFirst().weights()) assertEquals(1f, w);
    }

    @Test
    void badTilingIsRefusedWithTheNumbers() {
        var e = assertThrows(IllegalArgumentException.class, () -> TileGrid.axis(100, 32, 32, 1));
        assertTrue(e.getMessage().contains("32"), e.getMessage());
    }
}
