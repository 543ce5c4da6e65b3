package dev.headroom.core.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * An EXIF-turned image as a view of its stored samples gives the floats the turned copy
 * ({@link Orientation#apply}) holds, for every orientation, span and channel view; a sample
 * image's channel views share its samples and give the floats a copy would.
 */
class OrientedImageTest {
    private final Random rnd = new Random(3);

    private SampleImage samples(int w, int h, int c, int bits) {
        int n = w * h * c;
        if (bits == 8) {
            byte[] b = new byte[n];
            rnd.nextBytes(b);
            return SampleImage.of8(w, h, c, b);
        }
        short[] s = new short[n];
        for (int i = 0; i < n; i++) s[i] = (short) rnd.nextInt(65536);
        return SampleImage.of16(w, h, c, s);
    }

    /** Every row of {@code img}, read in random spans, against {@code expected}. */
    private void assertSameFloats(FloatImage expected, InputImage img, String what) {
        assertEquals(expected.width(), img.width(), what);
        assertEquals(expected.height(), img.height(), what);
        assertEquals(expected.channels(), img.channels(), what);
        int c = img.channels();
        float[] row = new float[img.width() * c];
        for (int y = 0; y < img.height(); y++) {
            for (int x = 0; x < img.width(); ) {
                int n = Math.min(img.width() - x, 1 + rnd.nextInt(5));
                img.floats(y, x, n, row, x * c);
                x += n;
            }
            float[] want = java.util.Arrays.copyOfRange(expected.data(), y * row.length, (y + 1) * row.length);
            assertArrayEquals(want, row, what + " row " + y);
        }
        assertArrayEquals(expected.data(), img.toFloat().data(), what + " whole");
    }

    @Test
    void aTurnedViewGivesTheTurnedCopysFloatsForEveryOrientationSpanAndChannelView() {
        int[][] sizes = {{1, 1}, {5, 3}, {7, 11}, {2, 9}};
        for (int[] s : sizes) {
            for (int c = 1; c <= 4; c++) {
                for (int bits : new int[] {8, 16}) {
                    SampleImage stored = samples(s[0], s[1], c, bits);
                    FloatImage storedFloats = stored.toFloat();
                    for (int o = 1; o <= 8; o++) {
                        String what = s[0] + "x" + s[1] + "x" + c + " " + bits + "-bit orientation " + o;
                        InputImage view = OrientedImage.of(stored, o);
                        if (o == 1) assertSame(stored, view, what);
                        FloatImage turned = Orientation.apply(storedFloats, o);
                        assertSameFloats(turned, view, what);
                        assertSameFloats(turned.channels(c - 1, 1), view.channels(c - 1, 1), what + " last channel");
                        assertSameFloats(turned.channels(0, 1).repeatChannel(3), view.channels(0, 1).repeatChannel(3), what + " first channel x3");
                    }
                }
            }
        }
    }

    @Test
    void channelViewsOfSamplesShareThemAndGiveTheCopysFloats() {
        for (int c = 1; c <= 4; c++) {
            for (int bits : new int[] {8, 16}) {
                SampleImage img = samples(9, 7, c, bits);
                FloatImage f = img.toFloat();
                for (int from = 0; from < c; from++) {
                    for (int count = 1; from + count <= c; count++) {
                        SampleImage v = img.channels(from, count);
                        assertEquals(img.sampleBytes(), v.sampleBytes(), "a view holds no samples of its own");
                        assertSameFloats(f.channels(from, count), v, c + " channels, view " + from + "+" + count);
                        assertSameFloats(f.channels(from, count).repeatChannel(3), v.repeatChannel(3), c + " channels, view " + from + "+" + count + " x3");
                        if (count > 1) assertSameFloats(f.channels(from, count).channels(1, 1), v.channels(1, 1), "a view of a view");
                    }
                }
            }
        }
        // a decoder's BGR array as it is
        byte[] bgr = {1, 2, 3, 4, 5, 6};
        SampleImage img = SampleImage.of8(2, 1, bgr, new int[] {2, 1, 0});
        float[] px = new float[2];
        img.channels(0, 1).floats(0, 0, 2, px, 0);
        assertArrayEquals(new float[] {3 / 255f, 6 / 255f}, px, "red is sample 2 of each group");
    }
}
