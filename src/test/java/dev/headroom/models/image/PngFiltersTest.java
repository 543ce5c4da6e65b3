package dev.headroom.models.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.headroom.testing.Randoms;
import java.awt.image.Raster;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.zip.Adler32;
import java.util.zip.Deflater;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The PNG filters and sample rounding, on the vector code and on the one-pass scalar code, give
 * the old per-filter code's bytes (PngFiltersReference): every filter's sum, the chosen filter and
 * the filtered row, for rows of many lengths and pixel sizes; the rounded samples, at the rounding
 * edges and NaN; and whole streamed files, whose deflate stream must equal the one the old code
 * makes (reference rows, cut into the same pieces, each deflated with a sync flush) and which
 * ImageIO decodes to the reference samples. The warm-up's own check passes.
 */
class PngFiltersTest {
    @TempDir
    Path dir;

    private final Random rnd = new Random(Randoms.seed());

    /** A row pair's bytes of one of several kinds: noise, smooth ramps with noise, extremes (0 and 255 only), flat. */
    private byte[] rows(int kind, int n) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) switch (kind) {
                case 0 -> rnd.nextInt(256);
                case 1 -> (i / 3) + rnd.nextInt(7);
                case 2 -> rnd.nextBoolean() ? 0 : 255;
                case 3 -> rnd.nextInt(4) == 0 ? rnd.nextInt(256) : 128;
                default -> 7;
            };
        }
        return b;
    }

    @Test
    void everyFiltersSumTheChoiceAndTheRowAreTheOldOnes() {
        int[] lengths = {1, 2, 3, 5, 16, 63, 64, 65, 127, 129, 200, 1000, 16320, 16383, 16384, 16385, 40000};
        for (int len : lengths)
            for (int bpp : new int[] {1, 2, 3, 4, 6, 8})
                for (int kind = 0; kind < 5; kind++) {
                    if (len % bpp != 0) continue;
                    for (boolean first : new boolean[] {false, true}) {
                        String what = len + " bytes, bpp " + bpp + ", kind " + kind + (first ? ", first row" : "");
                        // raw holds a junk prefix, the row above, then the row: offsets are not zero
                        byte[] raw = rows(kind, 7 + 2 * len);
                        int prev = first ? -1 : 7, cur = 7 + len;
                        byte[] up = first ? new byte[len] : raw;
                        int upAt = first ? 0 : prev;
                        long[] vector = new long[5], scalar = new long[5];
                        PngVectors.sums(raw, cur, up, upAt, len, bpp, vector);
                        PngFilters.sums(raw, cur, up, upAt, bpp, 0, len, scalar);
                        for (int t = 0; t < 5; t++) {
                            long want = PngFiltersReference.cost(t, raw, cur, prev, len, bpp, Long.MAX_VALUE);
                            assertEquals(want, vector[t], what + ": filter " + t + "'s sum, vector code");
                            assertEquals(want, scalar[t], what + ": filter " + t + "'s sum, scalar code");
                        }
                        byte[] expected = new byte[len + 3], actual = new byte[len + 3];
                        PngFiltersReference.best(raw, cur, prev, len, bpp, false, expected, 2);
                        for (boolean v : new boolean[] {true, false}) {
                            withVectors(v, () -> PngFilters.best(raw, cur, prev, len, bpp, false, actual, 2));
                            assertArrayEquals(expected, actual, what + ": chosen filter " + expected[2] + " and its row, vectors " + v);
                        }
                        for (int t = 1; t < 5; t++) {
                            java.util.Arrays.fill(expected, (byte) 0);
                            java.util.Arrays.fill(actual, (byte) 0);
                            PngFiltersReference.apply(t, raw, cur, prev, len, bpp, expected, 2);
                            PngVectors.apply(t, raw, cur, up, upAt, len, bpp, actual, 2);
                            assertArrayEquals(expected, actual, what + ": filter " + t + "'s row, vector code");
                            java.util.Arrays.fill(actual, (byte) 0);
                            PngFilters.apply(t, raw, cur, up, upAt, bpp, 0, len, actual, 2);
                            assertArrayEquals(expected, actual, what + ": filter " + t + "'s row, scalar code");
                        }
                    }
                }
    }

    /** Runs {@code r} with the encoder on the vector code or the scalar code, then restores the setting. */
    private static void withVectors(boolean on, Runnable r) {
        boolean was = PngWarmup.ready;
        PngWarmup.ready = on;
        try {
            r.run();
        } finally {
            PngWarmup.ready = was;
        }
    }

    @Test
    void paethIsTheOldOneOnEveryInput() {
        for (int a = 0; a < 256; a++)
            for (int b = 0; b < 256; b++)
                for (int c = 0; c < 256; c++) {
                    if (PngFilters.paeth(a, b, c) != PngFiltersReference.paeth(a, b, c)) {
                        assertEquals(PngFiltersReference.paeth(a, b, c), PngFilters.paeth(a, b, c), "paeth(" + a + ", " + b + ", " + c + ")");
                    }
                }
    }

    @Test
    void theWarmUpsOwnCheckPasses() {
        assertEquals(null, PngWarmup.check(300));
    }

    @Test
    void roundedSamplesAreTheOldOnesAtTheEdges() {
        List<Float> v = new ArrayList<>(List.of(Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, -0f, 0f, 1f, -1e-30f, 1.0000001f, 0.49999997f / 255f));
        for (float max : new float[] {255f, 65535f}) {
            for (int k = 0; k < 300; k++) {
                float edge = (rnd.nextInt((int) max) + 0.5f) / max;   // near a rounding edge
                v.add(edge);
                v.add(Math.nextUp(edge));
                v.add(Math.nextDown(edge));
            }
        }
        for (int k = 0; k < 5000; k++) v.add((float) (rnd.nextDouble() * 1.4 - 0.2));
        float[] data = new float[v.size() + 3];
        for (int i = 0; i < v.size(); i++) data[i + 3] = v.get(i);
        for (int bytes = 1; bytes <= 2; bytes++)
            for (int n : new int[] {1, 15, 16, 17, 33, v.size()}) {
                byte[] expected = new byte[n * bytes + 5], actual = new byte[n * bytes + 5];
                PngFiltersReference.sample(data, 3, n, bytes, expected, 5);
                for (boolean on : new boolean[] {true, false}) {
                    int b = bytes, m = n;
                    java.util.Arrays.fill(actual, (byte) 0);
                    withVectors(on, () -> SampleBytes.round(data, 3, m, b, actual, 5));
                    assertArrayEquals(expected, actual, n + " values to " + bytes + "-byte samples, vectors " + on);
                }
            }
    }

    @Test
    void streamedFilesAreTheOldCodesBytes() throws IOException {
        int[][] sizes = {{1, 9}, {5, 3}, {33, 17}, {257, 40}, {2100, 6}};
        for (boolean v : new boolean[] {true, false}) {
            boolean was = PngWarmup.ready;
            PngWarmup.ready = v;
            try {
                for (int[] s : sizes)
                    for (int c = 1; c <= 4; c++)
                        for (int bits : new int[] {8, 16}) check(s[0], s[1], c, bits, v);
                check(1500, 800, 3, 8, v);   // several 1 MiB pieces a band
            } finally {
                PngWarmup.ready = was;
            }
        }
    }

    /** Writes a w x h image through PngWriter in random bands and compares it with the old code's stream and samples. */
    private void check(int w, int h, int c, int bits, boolean vectors) throws IOException {
        String what = w + "x" + h + "x" + c + " " + bits + "-bit, vectors " + vectors;
        int values = w * c, bytes = bits / 8, rowBytes = values * bytes;
        float[] data = new float[values * h];
        for (int y = 0; y < h; y++)
            for (int i = 0; i < values; i++) {
                float v = (float) (0.5 + 0.4 * Math.sin(i * 0.02 + y * 0.05) + rnd.nextGaussian() * 0.02);
                data[y * values + i] = rnd.nextInt(300) == 0 ? v * 3 - 1 : rnd.nextInt(5000) == 0 ? Float.NaN : v;
            }
        List<Integer> bands = new ArrayList<>();
        for (int y = 0; y < h; ) {
            int n = Math.min(h - y, 1 + rnd.nextInt(Math.max(1, h / 3)));
            bands.add(n);
            y += n;
        }
        Path file = dir.resolve("s.png");
        int level = Encoding.png().pngLevel();
        try (ImageWriter wr = ImageWriter.open(file, Encoding.png(), w, h, c, bits)) {
            int y = 0;
            for (int n : bands) {
                wr.rows(data, y * values, n);
                y += n;
            }
            wr.finish();
        }

        // the old code: reference samples and filters over the whole image, deflated in the writer's pieces
        byte[] raw = new byte[h * rowBytes], filtered = new byte[h * (rowBytes + 1)];
        for (int y = 0; y < h; y++) PngFiltersReference.sample(data, y * values, values, bytes, raw, y * rowBytes);
        for (int y = 0; y < h; y++) {
            PngFiltersReference.best(raw, y * rowBytes, y > 0 ? (y - 1) * rowBytes : -1, rowBytes, c * bytes, level == 0, filtered, y * (rowBytes + 1));
        }
        ByteArrayOutputStream expected = new ByteArrayOutputStream();
        expected.write(0x78);
        expected.write(level <= 1 ? 0x01 : 0x9C);
        int per = Math.max(1, PngWriter.PIECE_BYTES / rowBytes), y = 0;
        for (int n : bands) {
            for (int a = 0; a < n; a += per) {
                int rows = Math.min(n, a + per) - a;
                expected.writeBytes(deflate(filtered, (y + a) * (rowBytes + 1), rows * (rowBytes + 1), level));
            }
            y += n;
        }
        Adler32 adler = new Adler32();
        adler.update(filtered);
        expected.writeBytes(new byte[] {0x03, 0x00});
        expected.writeBytes(java.nio.ByteBuffer.allocate(4).putInt((int) adler.getValue()).array());
        assertArrayEquals(expected.toByteArray(), idat(file), what + ": the deflate stream (bands " + bands + ")");

        Raster r = ImageIO.read(file.toFile()).getRaster();
        int[] got = r.getPixels(0, 0, w, h, (int[]) null);
        int[] want = new int[values * h];
        for (int i = 0; i < want.length; i++) want[i] = bytes == 1 ? raw[i] & 0xff : (raw[2 * i] & 0xff) << 8 | (raw[2 * i + 1] & 0xff);
        assertArrayEquals(want, got, what + ": ImageIO's samples");
    }

    private static byte[] deflate(byte[] b, int from, int length, int level) {
        Deflater d = new Deflater(level, true);
        try {
            d.setInput(b, from, length);
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            byte[] buf = new byte[1 << 16];
            int n;
            do {
                n = d.deflate(buf, 0, buf.length, Deflater.SYNC_FLUSH);
                out.write(buf, 0, n);
            } while (n == buf.length);
            return out.toByteArray();
        } finally {
            d.end();
        }
    }

    /** The IDAT chunks' payload of a PNG, concatenated. */
    private static byte[] idat(Path png) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (DataInputStream in = new DataInputStream(Files.newInputStream(png))) {
            in.skipNBytes(8);
            while (true) {
                int len = in.readInt();
                String type = new String(in.readNBytes(4), java.nio.charset.StandardCharsets.US_ASCII);
                byte[] data = in.readNBytes(len);
                in.skipNBytes(4);
                if (type.equals("IDAT")) out.writeBytes(data);
                if (type.equals("IEND")) return out.toByteArray();
            }
        }
    }
}
