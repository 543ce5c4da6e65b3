package dev.headroom.models.image;

/**
 * PNG's five row filters (None, Sub, Up, Average, Paeth; PNG spec section 9) and libpng's way of
 * choosing among them: the filter whose output, read as signed bytes, has the least sum of
 * absolute values, the lower type on a tie. {@code bpp} is the bytes per complete pixel (at least
 * 1); a = the byte bpp to the left (0 in the first pixel), b = the byte above, c = above-left.
 * The first row of an image has a row above of zeros, where Up is None and Paeth is Sub.
 *
 * <p>All five sums come from one pass over the row, then the chosen filter writes the row: with
 * the Vector API ({@link PngVectors}) once {@link PngWarmup} has it compiled, else here one byte
 * at a time. Both sum exactly, so the choice is always the old per-filter code's
 * (PngFiltersReference in the tests checks both byte for byte).
 */
final class PngFilters {
    private PngFilters() {}

    /**
     * Writes the filter type byte and the filtered row of {@code raw[cur .. cur+len)} to
     * {@code out[o ..]}; {@code prev} is the row above's start in raw, or -1 for the first row (the
     * row above then counts as zeros). {@code none} skips the choice (deflate level 0).
     */
    static void best(byte[] raw, int cur, int prev, int len, int bpp, boolean none, byte[] out, int o) {
        byte[] up = raw;
        if (prev < 0) {
            up = new byte[len];   // once an image: its first row
            prev = 0;
        }
        boolean vector = PngWarmup.ready();
        int type = 0;
        if (!none) {
            long[] sums = new long[5];
            if (vector) PngVectors.sums(raw, cur, up, prev, len, bpp, sums);
            else sums(raw, cur, up, prev, bpp, 0, len, sums);
            for (int t = 1; t < 5; t++) if (sums[t] < sums[type]) type = t;
        }
        out[o] = (byte) type;
        if (type == 0) System.arraycopy(raw, cur, out, o + 1, len);
        else if (vector) PngVectors.apply(type, raw, cur, up, prev, len, bpp, out, o + 1);
        else apply(type, raw, cur, up, prev, bpp, 0, len, out, o + 1);
    }

    /** Adds the five filters' |filtered byte| over bytes [from, to) of the row to {@code sums[0..5)}; the row above is {@code up[prev ..]}. */
    static void sums(byte[] raw, int cur, byte[] up, int prev, int bpp, int from, int to, long[] sums) {
        long s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0;
        int i = from;
        for (; i < bpp && i < to; i++) {   // a = c = 0: Sub is None, Paeth is Up
            int x = raw[cur + i], b = up[prev + i] & 0xff;
            s0 += Math.abs(x);
            s1 += Math.abs(x);
            s2 += Math.abs((int) (byte) (x - b));
            s3 += Math.abs((int) (byte) (x - (b >>> 1)));
            s4 += Math.abs((int) (byte) (x - b));
        }
        for (; i < to; i++) {
            int x = raw[cur + i], a = raw[cur + i - bpp] & 0xff, b = up[prev + i] & 0xff, c = up[prev + i - bpp] & 0xff;
            s0 += Math.abs(x);
            s1 += Math.abs((int) (byte) (x - a));
            s2 += Math.abs((int) (byte) (x - b));
            s3 += Math.abs((int) (byte) (x - ((a + b) >>> 1)));
            s4 += Math.abs((int) (byte) (x - paeth(a, b, c)));
        }
        sums[0] += s0;
        sums[1] += s1;
        sums[2] += s2;
        sums[3] += s3;
        sums[4] += s4;
    }

    /** Filters bytes [from, to) of the row with {@code type} (1 to 4) into {@code dst[d + from ..]}. */
    static void apply(int type, byte[] raw, int cur, byte[] up, int prev, int bpp, int from, int to, byte[] dst, int d) {
        for (int i = from; i < to; i++) {
            int x = raw[cur + i], b = up[prev + i] & 0xff;
            int a = i >= bpp ? raw[cur + i - bpp] & 0xff : 0, c = i >= bpp ? up[prev + i - bpp] & 0xff : 0;
            int p = switch (type) {
                case 1 -> a;
                case 2 -> b;
                case 3 -> (a + b) >>> 1;
                default -> paeth(a, b, c);
            };
            dst[d + i] = (byte) (x - p);
        }
    }

    /** PNG's Paeth predictor: of a, b, c the one nearest p = a + b - c, a then b on a tie; no branch to mispredict on noisy rows. */
    static int paeth(int a, int b, int c) {
        int pa = Math.abs(b - c), pb = Math.abs(a - c), pc = Math.abs(a + b - 2 * c);   // |p - a|, |p - b|, |p - c|
        int bc = pb <= pc ? b : c;
        return pa <= pb & pa <= pc ? a : bc;
    }
}
