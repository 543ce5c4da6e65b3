package dev.headroom.models.image;

/**
 * The scalar PngFilters as it was before the vectorised one (commit 8aade90), kept as the reference
 * that {@link PngFiltersTest} compares the new one with byte for byte, and the "old" side of
 * {@link PngBench}. PNG's five row filters (None, Sub, Up, Average, Paeth; PNG spec section 9) and libpng's way of
 * choosing among them: the filter whose output, read as signed bytes, has the least sum of
 * absolute values. {@code bpp} is the bytes per complete pixel (at least 1). Each filter is its
 * own loop (a switch per byte cost twice the time), and a row is filtered into the output only
 * once the choice is made.
 */
final class PngFiltersReference {
    private PngFiltersReference() {}

    /** One row of floats to big-endian 8 or 16 bit samples at {@code raw[at]}: PngWriter's conversion before SampleBytes. */
    static void sample(float[] data, int from, int n, int bytesPerSample, byte[] raw, int at) {
        if (bytesPerSample == 1) {
            for (int i = 0; i < n; i++) raw[at + i] = (byte) Math.round(Math.clamp(data[from + i], 0f, 1f) * 255f);
        } else {
            for (int i = 0; i < n; i++) {
                int v = Math.round(Math.clamp(data[from + i], 0f, 1f) * 65535f);
                raw[at + 2 * i] = (byte) (v >>> 8);
                raw[at + 2 * i + 1] = (byte) v;
            }
        }
    }

    /**
     * Writes the filter type byte and the filtered row of {@code raw[cur .. cur+len)} to
     * {@code out[o ..]}; {@code prev} is the row above's start in raw, or -1 for the first row (the
     * row above then counts as zeros). {@code none} skips the choice (deflate level 0).
     */
    static void best(byte[] raw, int cur, int prev, int len, int bpp, boolean none, byte[] out, int o) {
        int type = 0;
        if (!none) {
            long best = Long.MAX_VALUE;
            for (int t = 0; t < 5; t++) {
                long s = cost(t, raw, cur, prev, len, bpp, best);
                if (s < best) {
                    best = s;
                    type = t;
                }
            }
        }
        out[o] = (byte) type;
        apply(type, raw, cur, prev, len, bpp, out, o + 1);
    }

    /** The sum of |filtered byte| for filter {@code type}, or something at least {@code limit} once it is passed. */
    static long cost(int type, byte[] raw, int cur, int prev, int len, int bpp, long limit) {
        long sum = 0;
        int i = 0;
        switch (type) {
            case 0 -> {
                for (; i < len; i++) sum += Math.abs((int) raw[cur + i]);
            }
            case 1 -> {
                for (; i < bpp && i < len; i++) sum += Math.abs((int) raw[cur + i]);
                for (; i < len; i++) sum += Math.abs((int) (byte) (raw[cur + i] - raw[cur + i - bpp]));
            }
            case 2 -> {
                if (prev < 0) return cost(0, raw, cur, prev, len, bpp, limit);
                for (; i < len; i++) sum += Math.abs((int) (byte) (raw[cur + i] - raw[prev + i]));
            }
            case 3 -> {
                if (prev < 0) {
                    for (; i < bpp && i < len; i++) sum += Math.abs((int) raw[cur + i]);
                    for (; i < len; i++) sum += Math.abs((int) (byte) (raw[cur + i] - ((raw[cur + i - bpp] & 0xff) >>> 1)));
                } else {
                    for (; i < bpp && i < len; i++) sum += Math.abs((int) (byte) (raw[cur + i] - ((raw[prev + i] & 0xff) >>> 1)));
                    for (; i < len; i++) {
                        sum += Math.abs((int) (byte) (raw[cur + i] - (((raw[cur + i - bpp] & 0xff) + (raw[prev + i] & 0xff)) >>> 1)));
                    }
                }
            }
            default -> {
                if (prev < 0) return cost(1, raw, cur, prev, len, bpp, limit);   // Paeth with no row above is Sub
                for (; i < bpp && i < len; i++) sum += Math.abs((int) (byte) (raw[cur + i] - raw[prev + i]));
                for (; i < len; i++) {
                    int p = paeth(raw[cur + i - bpp] & 0xff, raw[prev + i] & 0xff, raw[prev + i - bpp] & 0xff);
                    sum += Math.abs((int) (byte) (raw[cur + i] - p));
                    if ((i & 4095) == 0 && sum >= limit) return sum;
                }
            }
        }
        return sum;
    }

    /** Filters with {@code type} into {@code dst[d ..]}. */
    static void apply(int type, byte[] raw, int cur, int prev, int len, int bpp, byte[] dst, int d) {
        int i = 0;
        switch (type) {
            case 0 -> System.arraycopy(raw, cur, dst, d, len);
            case 1 -> {
                for (; i < bpp && i < len; i++) dst[d + i] = raw[cur + i];
                for (; i < len; i++) dst[d + i] = (byte) (raw[cur + i] - raw[cur + i - bpp]);
            }
            case 2 -> {
                if (prev < 0) System.arraycopy(raw, cur, dst, d, len);
                else for (; i < len; i++) dst[d + i] = (byte) (raw[cur + i] - raw[prev + i]);
            }
            case 3 -> {
                for (; i < bpp && i < len; i++) dst[d + i] = (byte) (raw[cur + i] - (prev < 0 ? 0 : (raw[prev + i] & 0xff) >>> 1));
                for (; i < len; i++) {
                    int up = prev < 0 ? 0 : raw[prev + i] & 0xff;
                    dst[d + i] = (byte) (raw[cur + i] - (((raw[cur + i - bpp] & 0xff) + up) >>> 1));
                }
            }
            default -> {
                if (prev < 0) {
                    apply(1, raw, cur, prev, len, bpp, dst, d);
                    return;
                }
                for (; i < bpp && i < len; i++) dst[d + i] = (byte) (raw[cur + i] - raw[prev + i]);
                for (; i < len; i++) dst[d + i] = (byte) (raw[cur + i] - paeth(raw[cur + i - bpp] & 0xff, raw[prev + i] & 0xff, raw[prev + i - bpp] & 0xff));
            }
        }
    }

    static int paeth(int a, int b, int c) {
        int p = a + b - c;
        int pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
}
