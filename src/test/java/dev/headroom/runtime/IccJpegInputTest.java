package dev.headroom.runtime;

import static dev.headroom.runtime.StreamedPngInputTest.assertWhole;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.image.InputImage;
import dev.headroom.models.image.ImageFiles;
import dev.headroom.models.image.StreamedRows;
import java.awt.color.ColorSpace;
import java.awt.color.ICC_Profile;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * JPEGs with an embedded display profile (linear RGB, an Adobe RGB 1998 compatible one, a Display
 * P3 like one, one split over two APP2 chunks) stream by rows, each row converted through the
 * profile by the JDK's reader, to the samples of the whole path, which converts the whole image
 * through it (TwelveMonkeys); profiles the whole path treats otherwise stay whole and say why.
 */
public class IccJpegInputTest {
    private final Random rnd = new Random(21);
    @TempDir Path dir;

    /** The JPEG with {@code profile} in APP2 "ICC_PROFILE" chunks of at most {@code chunk} bytes after JFIF's APP0. */
    public static byte[] tagged(byte[] plain, byte[] profile, int chunk) {
        var app2 = new ByteArrayOutputStream();
        int chunks = (profile.length + chunk - 1) / chunk;
        for (int k = 0; k < chunks; k++) {
            int from = k * chunk, n = Math.min(chunk, profile.length - from), len = 2 + 12 + 2 + n;
            app2.write(0xff);
            app2.write(0xe2);
            app2.write(len >> 8);
            app2.write(len & 0xff);
            app2.writeBytes("ICC_PROFILE\0".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
            app2.write(k + 1);
            app2.write(chunks);
            app2.write(profile, from, n);
        }
        int at = 4 + ((plain[4] & 0xff) << 8 | (plain[5] & 0xff));   // SOI, then APP0 (JFIF)
        var out = new ByteArrayOutputStream();
        out.write(plain, 0, at);
        out.writeBytes(app2.toByteArray());
        out.write(plain, at, plain.length - at);
        return out.toByteArray();
    }

    private static byte[] xyz(double x, double y, double z) {
        ByteBuffer b = ByteBuffer.allocate(20).put("XYZ ".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1)).putInt(0);
        for (double v : new double[] {x, y, z}) b.putInt((int) Math.round(v * 65536));
        return b.array();
    }

    /** sRGB's curves with Display P3's primaries (D50-adapted): a display profile like a phone's. */
    private static ICC_Profile p3Like() {
        ICC_Profile p = ICC_Profile.getInstance(ICC_Profile.getInstance(ColorSpace.CS_sRGB).getData());
        p.setData(ICC_Profile.icSigRedColorantTag, xyz(0.5151, 0.2412, -0.0011));
        p.setData(ICC_Profile.icSigGreenColorantTag, xyz(0.2920, 0.6922, 0.0419));
        p.setData(ICC_Profile.icSigBlueColorantTag, xyz(0.1571, 0.0666, 0.7841));
        return p;
    }

    private Map<String, byte[]> displayProfiles() throws Exception {
        Map<String, byte[]> m = new LinkedHashMap<>();
        m.put("linear RGB", ICC_Profile.getInstance(ColorSpace.CS_LINEAR_RGB).getData());
        try (var in = com.twelvemonkeys.imageio.color.ColorProfiles.class.getResourceAsStream("/profiles/ClayRGB1998.icc")) {
            m.put("ClayRGB1998", in.readAllBytes());
        }
        m.put("P3-like", p3Like().getData());
        // P3's primaries with tabulated curves of 12,000 entries each (a gamma of 2.2): longer than one APP2 segment
        ICC_Profile big = p3Like();
        int n = 12_000;
        ByteBuffer curve = ByteBuffer.allocate(12 + 2 * n).put("curv".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1)).putInt(0).putInt(n);
        for (int i = 0; i < n; i++) curve.putShort((short) Math.round(Math.pow(i / (n - 1.0), 2.2) * 65535));
        for (int tag : new int[] {ICC_Profile.icSigRedTRCTag, ICC_Profile.icSigGreenTRCTag, ICC_Profile.icSigBlueTRCTag}) big.setData(tag, curve.array());
        assertTrue(big.getData().length > 65_519, "two chunks: " + big.getData().length + " bytes");
        m.put("P3-like tabulated, 2 chunks", big.getData());
        return m;
    }

    @Test
    void displayProfilesStreamToTheWholeConversionsSamplesHoldingAFewRows() throws Exception {
        int[][] shapes = {{61, 45, 2, 2, 0}, {37, 70, 1, 1, 0}, {40, 33, 2, 1, 2}, {1, 1, 2, 2, 0}, {70, 40, 2, 2, 1}};
        for (var e : displayProfiles().entrySet()) {
            for (int[] k : shapes) {
                String what = e.getKey() + " " + k[0] + "x" + k[1] + " sampling " + k[2] + "x" + k[3] + " restart " + k[4];
                Path plain = StreamedJpegInputTest.jpeg(dir, "plain.jpg", StreamedJpegInputTest.picture(rnd, k[0], k[1], false), k[2], k[3], k[4], false, 0.9f);
                Path file = dir.resolve("icc.jpg");
                Files.write(file, tagged(Files.readAllBytes(plain), e.getValue(), 65000));
                ImageFiles.Input in = ImageFiles.readInput(file, Long.MAX_VALUE, ImageFiles.ReadOptions.STRICT);
                assertNull(in.decodedWhole(), what + ": streams");
                InputImage whole = ImageFiles.readSamples(file, Long.MAX_VALUE, ImageFiles.ReadOptions.STRICT);
                float[] a = new float[k[0] * 3], b = new float[k[0] * 3];
                try (InputImage rows = in.image()) {
                    for (int y = 0; y < k[1]; y++) {
                        whole.floats(y, 0, k[0], a, 0);
                        rows.floats(y, 0, k[0], b, 0);
                        assertArrayEquals(a, b, what + " row " + y);
                        rows.release(y);
                    }
                    assertTrue(((StreamedRows) rows).heldRowsPeak() <= 2, what + ": rows held " + ((StreamedRows) rows).heldRowsPeak());
                }
                // and the whole path did convert: the same file without its profile decodes to other samples
                if (!e.getKey().startsWith("linear") || k[0] > 1) {
                    InputImage unconverted = ImageFiles.readSamples(plain, Long.MAX_VALUE, ImageFiles.ReadOptions.STRICT);
                    boolean differs = false;
                    for (int y = 0; y < k[1] && !differs; y++) {
                        whole.floats(y, 0, k[0], a, 0);
                        unconverted.floats(y, 0, k[0], b, 0);
                        differs = !java.util.Arrays.equals(a, b);
                    }
                    assertTrue(differs, what + ": the profile changes the samples");
                }
            }
        }
    }

    @Test
    void aGrayJpegWithAGrayProfileStreamsUnconvertedAsTheWholePathReadsIt() throws Exception {
        Path plain = StreamedJpegInputTest.jpeg(dir, "gray.jpg", StreamedJpegInputTest.picture(rnd, 45, 30, true), 1, 1, 0, false, 0.9f);
        Path file = dir.resolve("gray-icc.jpg");
        Files.write(file, tagged(Files.readAllBytes(plain), ICC_Profile.getInstance(ColorSpace.CS_GRAY).getData(), 65000));
        ImageFiles.Input in = ImageFiles.readInput(file, Long.MAX_VALUE, ImageFiles.ReadOptions.STRICT);
        assertNull(in.decodedWhole());
        try (InputImage rows = in.image()) {
            assertArrayEquals(ImageFiles.readSamples(file, Long.MAX_VALUE, ImageFiles.ReadOptions.STRICT).toFloat().data(), rows.toFloat().data());
        }
    }

    @Test
    void profilesTheWholePathTreatsOtherwiseStayWholeAndSayWhy() throws Exception {
        BufferedImage pic = StreamedJpegInputTest.picture(rnd, 29, 23, false);
        byte[] plain = Files.readAllBytes(StreamedJpegInputTest.jpeg(dir, "plain.jpg", pic, 2, 2, 0, false, 0.9f));
        Path srgb = dir.resolve("srgb.jpg");
        Files.write(srgb, tagged(plain, ICC_Profile.getInstance(ColorSpace.CS_sRGB).getData(), 65000));
        assertWhole(srgb, "sRGB ICC profile", ImageFiles.ReadOptions.STRICT);
        // the same display profile as an input-class (scanner) one, relative colorimetric: the whole path may treat its class otherwise
        byte[] scanner = p3Like().getData();
        scanner[12] = 's';
        scanner[13] = 'c';
        scanner[14] = 'n';
        scanner[15] = 'r';
        Path input = dir.resolve("scanner.jpg");
        Files.write(input, tagged(plain, scanner, 65000));
        assertTheWholePathsOutcome(input);
        // chunk 2 of 2 without chunk 1
        Path odd = dir.resolve("odd.jpg");
        Files.write(odd, dropFirstApp2(tagged(plain, p3Like().getData(), 300)));
        assertTheWholePathsOutcome(odd);
    }

    /** The file is not streamed: strict reading gives the whole path's refusal (TwelveMonkeys warns), --lenient its samples. */
    private static void assertTheWholePathsOutcome(Path file) {
        var whole = assertThrows(ImageFiles.BadImage.class, () -> ImageFiles.readSamples(file, Long.MAX_VALUE, ImageFiles.ReadOptions.STRICT));
        var got = assertThrows(ImageFiles.BadImage.class, () -> ImageFiles.readInput(file, Long.MAX_VALUE, ImageFiles.ReadOptions.STRICT));
        assertEquals(whole.getMessage(), got.getMessage());
        assertWhole(file, "JPEG with an ICC profile", new ImageFiles.ReadOptions(true, false));
    }

    /** The file without its first APP2 segment. */
    private static byte[] dropFirstApp2(byte[] jpeg) {
        for (int i = 2; i + 3 < jpeg.length; ) {
            int len = (jpeg[i + 2] & 0xff) << 8 | (jpeg[i + 3] & 0xff);
            if ((jpeg[i + 1] & 0xff) == 0xe2) {
                byte[] out = new byte[jpeg.length - 2 - len];
                System.arraycopy(jpeg, 0, out, 0, i);
                System.arraycopy(jpeg, i + 2 + len, out, i, jpeg.length - i - 2 - len);
                return out;
            }
            i += 2 + len;
        }
        throw new IllegalArgumentException("no APP2");
    }
}
