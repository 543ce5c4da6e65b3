package dev.headroom.models.image;

import com.twelvemonkeys.imageio.color.ColorProfiles;
import com.twelvemonkeys.imageio.metadata.jpeg.JPEGSegment;
import java.awt.color.ICC_Profile;
import java.io.IOException;
import java.io.InputStream;
import java.util.List;

/**
 * Whether a JPEG's embedded ICC profile lets it stream by rows ({@link JpegRows}) to the samples
 * the whole path gives. The whole path (TwelveMonkeys' reader) reads the raw YCbCr, converts it to
 * RGB as libjpeg does and then converts the whole image from the profile to sRGB with a
 * {@link java.awt.image.ColorConvertOp}; the JDK's reader, given an sRGB destination, converts each
 * scanline with the same op from the same profile (JPEGImageReader.checkColorConversion and
 * acceptPixels). That is pixel for pixel, so the rows equal the whole image's where both readers
 * use the profile as it is. They do not, and the file stays whole, where:
 * <ul>
 *   <li>the chunks are not 1..N of N, or the profile does not parse (the whole path warns);</li>
 *   <li>its components are not the frame's, or it is not a display profile (TwelveMonkeys warns
 *       about, or rewrites, an output or input profile's class);</li>
 *   <li>it is an sRGB profile by TwelveMonkeys' test (the whole path then reads without converting).</li>
 * </ul>
 * Otherwise TwelveMonkeys uses the file's profile as it is: it swaps in the JDK's own instance
 * only for a built-in profile whose header and profile id match (the same profile), and its
 * sanitiser for the JDK's colour engine (LCMS) changes nothing (LCMSSanitizerStrategy in 3.14).
 * Gray files with a profile are not converted by either reader (the same checks keep the
 * profiles the whole path warns about whole).
 */
final class JpegProfile {
    private JpegProfile() {}

    /** Why the profile in {@code chunks} (APP2 "ICC_PROFILE" segments, in file order) keeps a file of {@code n} components whole; null if it streams. */
    static String whyWhole(List<JPEGSegment> chunks, int n) throws IOException {
        byte[][] parts = new byte[chunks.size()][];
        for (JPEGSegment s : chunks) {
            byte[] d;
            try (InputStream in = s.data()) {
                d = in.readAllBytes();
            }
            // data() starts after "ICC_PROFILE\0": the chunk's number (from 1) and the count
            if (d.length < 2 || (d[1] & 0xff) != chunks.size() || (d[0] & 0xff) < 1 || (d[0] & 0xff) > chunks.size() || parts[(d[0] & 0xff) - 1] != null) {
                return "JPEG with an ICC profile in odd chunks";
            }
            parts[(d[0] & 0xff) - 1] = java.util.Arrays.copyOfRange(d, 2, d.length);
        }
        var all = new java.io.ByteArrayOutputStream();
        for (byte[] p : parts) all.writeBytes(p);
        byte[] bytes = all.toByteArray();
        ICC_Profile profile;
        try {
            profile = ICC_Profile.getInstance(bytes);
        } catch (IllegalArgumentException e) {
            return "JPEG with an unreadable ICC profile";
        }
        if (profile.getNumComponents() != n) return "JPEG with an ICC profile of " + profile.getNumComponents() + " components for " + n;
        if (profile.getProfileClass() != ICC_Profile.CLASS_DISPLAY) return "JPEG with an ICC profile that is not a display profile (class " + profile.getProfileClass() + ")";
        if (n == 3 && ColorProfiles.isCS_sRGB(profile)) return "JPEG with an sRGB ICC profile (the whole path reads it unconverted)";
        return null;
    }
}
