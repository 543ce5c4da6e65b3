package dev.headroom.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.image.FloatImage;
import dev.headroom.core.image.InputImage;
import dev.headroom.core.image.Resample;
import dev.headroom.core.image.SampleImage;
import dev.headroom.core.image.SampleSink;
import dev.headroom.testing.Randoms;
import java.io.ByteArrayOutputStream;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The alpha join of an RGBA or gray+alpha image on images wide enough that its resample's vertical
 * pass and its join run on several cores, and with bands of every size (the resample's ring of rows
 * kept from band to band, grown, and started again): the samples are the whole-image reference's,
 * bit for bit (issue 19: the single-threaded join was most of an RGBA job's host time).
 */
class JoinedRowsTest {
    private final Random rnd = new Random(Randoms.seed());

    @Test
    void wideAlphaImagesJoinTheWholeResampleRoundedInAnyBands() {
        int w = 1031, h = 23, scale = 4, outW = w * scale, outH = h * scale;
        assertTrue((long) JoinedRows.ALPHA_ROWS * outW >= JoinedRows.PARALLEL_PIXELS, "wide enough for the parallel join");
        for (int channels : new int[] {2, 4})
            for (int bits : new int[] {8, 16}) {
                int bytes = bits / 8, cc = channels - 1;
                SampleImage in;
                int n = w * h * channels;
                if (bits == 8) {
                    byte[] s = new byte[n];
                    rnd.nextBytes(s);
                    in = SampleImage.of8(w, h, channels, s);
                } else {
                    short[] s = new short[n];
                    for (int i = 0; i < n; i++) s[i] = (short) rnd.nextInt(65536);
                    in = SampleImage.of16(w, h, channels, s);
                }
                // the reference: the whole alpha resampled at once, rounded as the writers round
                FloatImage alpha = Resample.bicubic(in.channels(channels - 1, 1).toFloat(), outW, outH);
                float max = bits == 8 ? 255f : 65535f;
                byte[] color = new byte[outW * outH * cc * bytes];
                rnd.nextBytes(color);
                byte[] expected = new byte[outW * outH * channels * bytes];
                for (int p = 0; p < outW * outH; p++) {
                    System.arraycopy(color, p * cc * bytes, expected, p * channels * bytes, cc * bytes);
                    int v = Math.round(Math.clamp(alpha.data()[p], 0f, 1f) * max);
                    if (bytes == 1) expected[p * channels + cc] = (byte) v;
                    else {
                        expected[(p * channels + cc) * 2] = (byte) (v >>> 8);
                        expected[(p * channels + cc) * 2 + 1] = (byte) v;
                    }
                }
                ByteArrayOutputStream got = new ByteArrayOutputStream();
                SampleSink sink = new SampleSink() {
                    public int sampleBits() { return bits; }
                    public void sampleRows(byte[] samples, int offset, int rows) { got.write(samples, offset, rows * outW * channels * bytes); }
                    public void rows(float[] data, int offset, int rows) { throw new AssertionError("samples expected"); }
                };
                JoinedRows joined = new JoinedRows(in, 3, scale, sink);
                int[] bands = {1, 70, 2, 5, 3};   // 70: more than a band of alpha, a bigger ring
                int y = 0;
                for (int i = 0; y < outH; i++) {
                    int rows = Math.min(outH - y, bands[i % bands.length]);
                    byte[] part = new byte[(3 + rows * outW * cc) * bytes];   // at an offset, as the window hands them over
                    System.arraycopy(color, y * outW * cc * bytes, part, 3 * bytes, rows * outW * cc * bytes);
                    joined.sampleRows(part, 3 * bytes, rows);
                    y += rows;
                }
                assertEquals(expected.length, got.size(), channels + " channels, " + bits + " bits");
                assertArrayEquals(expected, got.toByteArray(), channels + " channels, " + bits + " bits");
            }
    }

    @Test
    void bandedResampleEqualsTheWholeOneWithBigAndSmallBandsOnSeveralCores() {
        int w = 300, h = 37, c = 3, outW = 1201, outH = 150;
        float[] d = new float[w * h * c];
        for (int i = 0; i < d.length; i++) d[i] = rnd.nextFloat();
        FloatImage img = new FloatImage(w, h, c, d, 8);
        FloatImage whole = Resample.bicubic(img, outW, outH);
        InputImage view = img;
        Resample.Rows rows = new Resample.Rows(view, outW, outH);
        float[] band = new float[outW * outH * c];
        int[] sizes = {3, 90, 1, 1, 40, 7};   // 90 rows: parallel and a bigger ring; then small ones reuse it
        for (int y = 0, i = 0; y < outH; i++) {
            int n = Math.min(outH - y, sizes[i % sizes.length]);
            rows.rows(y, n, band);
            for (int k = 0; k < n * outW * c; k++) assertEquals(whole.data()[y * outW * c + k], band[k], "row " + (y + k / (outW * c)));
            y += n;
        }
    }
}
