package dev.headroom.models.image;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * PNG's five row filters (None, Sub, Up, Average, Paeth; PNG spec section 9) and libpng's way of
 * choosing among them: the filter whose output, read as signed bytes, has the least sum of
 * absolute values, the lower type on a tie. {@code bpp} is the bytes per complete pixel (at least 1).
 *
 * <p>One pass over the row computes all five sums with the Vector API, a vector of bytes at a time
 * (a = the byte bpp to the left, b = the byte above, c = above-left): each filter's output byte
 * x - predictor wraps as PNG's does, its |signed value| is 0..128 read unsigned, and those are
 * summed in 16-bit lanes (odd and even bytes apart), which hold 255 vectors' worth before they are
 * folded into a long. The Paeth predictor stays in 8-bit lanes: pa = |b - c| and pb = |a - c| are
 * unsigned max minus min, and pc = |(b - c) + (a - c)| is pa + pb when the two differences have
 * the same sign and |pa - pb| when not; pa + pb saturates at 255, which changes no comparison
 * since pa and pb are at most 255. The first bpp bytes of a row (no left neighbour: a = c = 0)
 * and the last partial vector are done one byte at a time. The sums are exact, so the choice is
 * the scalar one's (PngFiltersReference in the tests, the old code, checks it byte for byte).
 * The first row of an image has a row above of zeros, where Up is None and Paeth is Sub.
 */
final class PngFilters {
    private static final VectorSpecies<Byte> B = ByteVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_PREFERRED;
    /** Vectors a 16-bit lane can sum before it may pass 65535 (each adds at most 2 * 128). */
    private static final int FOLD = 255;

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
        int type = none ? 0 : choose(raw, cur, up, prev, len, bpp);
        out[o] = (byte) type;
        apply(type, raw, cur, up, prev, len, bpp, out, o + 1);
    }

    /** The filter type with the least sum of |filtered byte|, the lowest type on a tie. */
    static int choose(byte[] raw, int cur, byte[] up, int prev, int len, int bpp) {
        long[] sums = new long[5];
        sums(raw, cur, up, prev, len, bpp, sums);
        int type = 0;
        for (int t = 1; t < 5; t++) if (sums[t] < sums[type]) type = t;
        return type;
    }

    /** The five filters' sums of |filtered byte| over the row, into {@code sums[0..5)}; the row above is {@code up[prev ..]}. */
    static void sums(byte[] raw, int cur, byte[] up, int prev, int len, int bpp, long[] sums) {
        long s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0;
        int i = 0;
        for (; i < bpp && i < len; i++) {   // no left neighbour: a = c = 0, so Sub is None and Paeth is Up
            int x = raw[cur + i], b = up[prev + i] & 0xff;
            s0 += Math.abs(x);
            s1 += Math.abs(x);
            s2 += Math.abs((int) (byte) (x - b));
            s3 += Math.abs((int) (byte) (x - (b >>> 1)));
            s4 += Math.abs((int) (byte) (x - b));
        }
        int vl = B.length();
        while (i + vl <= len) {
            int end = Math.min(len - vl, i + (FOLD - 1) * vl);   // the last start of a vector before a fold
            ShortVector a0 = ShortVector.zero(S), a1 = a0, a2 = a0, a3 = a0, a4 = a0;
            for (; i <= end; i += vl) {
                ByteVector x = ByteVector.fromArray(B, raw, cur + i);
                ByteVector a = ByteVector.fromArray(B, raw, cur + i - bpp);
                ByteVector b = ByteVector.fromArray(B, up, prev + i);
                ByteVector c = ByteVector.fromArray(B, up, prev + i - bpp);
                a0 = add(a0, x.abs());
                a1 = add(a1, x.sub(a).abs());
                a2 = add(a2, x.sub(b).abs());
                a3 = add(a3, x.sub(average(a, b)).abs());
                a4 = add(a4, x.sub(paeth(a, b, c)).abs());
            }
            s0 += fold(a0);
            s1 += fold(a1);
            s2 += fold(a2);
            s3 += fold(a3);
            s4 += fold(a4);
        }
        for (; i < len; i++) {
            int x = raw[cur + i], a = raw[cur + i - bpp] & 0xff, b = up[prev + i] & 0xff, c = up[prev + i - bpp] & 0xff;
            s0 += Math.abs(x);
            s1 += Math.abs((int) (byte) (x - a));
            s2 += Math.abs((int) (byte) (x - b));
            s3 += Math.abs((int) (byte) (x - ((a + b) >>> 1)));
            s4 += Math.abs((int) (byte) (x - paeth(a, b, c)));
        }
        sums[0] = s0;
        sums[1] = s1;
        sums[2] = s2;
        sums[3] = s3;
        sums[4] = s4;
    }

    /** acc plus the bytes of {@code abs} (each 0..128 read unsigned), two to a 16-bit lane. */
    private static ShortVector add(ShortVector acc, ByteVector abs) {
        ShortVector v = abs.reinterpretAsShorts();
        return acc.add(v.and((short) 0xff)).add(v.lanewise(VectorOperators.LSHR, 8));
    }

    /** The sum of the 16-bit lanes, read unsigned. */
    private static long fold(ShortVector acc) {
        IntVector v = acc.reinterpretAsInts();
        return v.and(0xffff).add(v.lanewise(VectorOperators.LSHR, 16)).reduceLanes(VectorOperators.ADD);
    }

    /** floor((a + b) / 2) of unsigned bytes, without leaving 8 bits. */
    private static ByteVector average(ByteVector a, ByteVector b) {
        return a.and(b).add(a.lanewise(VectorOperators.XOR, b).lanewise(VectorOperators.LSHR, 1));
    }

    /** The Paeth predictor of unsigned bytes in 8-bit lanes (see the class doc). */
    private static ByteVector paeth(ByteVector a, ByteVector b, ByteVector c) {
        ByteVector pa = b.lanewise(VectorOperators.UMAX, c).sub(b.lanewise(VectorOperators.UMIN, c));
        ByteVector pb = a.lanewise(VectorOperators.UMAX, c).sub(a.lanewise(VectorOperators.UMIN, c));
        VectorMask<Byte> same = b.compare(VectorOperators.UGE, c).eq(a.compare(VectorOperators.UGE, c));
        ByteVector apart = pa.lanewise(VectorOperators.UMAX, pb).sub(pa.lanewise(VectorOperators.UMIN, pb));
        ByteVector pc = apart.blend(pa.lanewise(VectorOperators.SUADD, pb), same);
        VectorMask<Byte> pickA = pa.compare(VectorOperators.ULE, pb).and(pa.compare(VectorOperators.ULE, pc));
        VectorMask<Byte> pickB = pb.compare(VectorOperators.ULE, pc);
        return c.blend(b, pickB).blend(a, pickA);
    }

    /** Filters with {@code type} into {@code dst[d ..]}; the row above is {@code up[prev ..]}. */
    static void apply(int type, byte[] raw, int cur, byte[] up, int prev, int len, int bpp, byte[] dst, int d) {
        if (type == 0) {
            System.arraycopy(raw, cur, dst, d, len);
            return;
        }
        int i = 0;
        for (; i < bpp && i < len; i++) {   // a = c = 0
            int x = raw[cur + i], b = up[prev + i] & 0xff;
            dst[d + i] = (byte) (type == 1 ? x : type == 3 ? x - (b >>> 1) : x - b);
        }
        int vl = B.length();
        for (; i + vl <= len; i += vl) {
            ByteVector x = ByteVector.fromArray(B, raw, cur + i);
            ByteVector a = ByteVector.fromArray(B, raw, cur + i - bpp);
            ByteVector p;
            if (type == 1) p = a;
            else {
                ByteVector b = ByteVector.fromArray(B, up, prev + i);
                if (type == 2) p = b;
                else if (type == 3) p = average(a, b);
                else p = paeth(a, b, ByteVector.fromArray(B, up, prev + i - bpp));
            }
            x.sub(p).intoArray(dst, d + i);
        }
        for (; i < len; i++) {
            int x = raw[cur + i], a = raw[cur + i - bpp] & 0xff, b = up[prev + i] & 0xff, c = up[prev + i - bpp] & 0xff;
            int p = switch (type) {
                case 1 -> a;
                case 2 -> b;
                case 3 -> (a + b) >>> 1;
                default -> paeth(a, b, c);
            };
            dst[d + i] = (byte) (x - p);
        }
    }

    static int paeth(int a, int b, int c) {
        int p = a + b - c;
        int pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
}
