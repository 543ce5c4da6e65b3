package dev.headroom.models.image;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link PngFilters}' sums and filters a vector of bytes at a time (the first bpp bytes of a row,
 * which have no left neighbour, and the last partial vector go to PngFilters' scalar code). Each
 * filter's output byte x - predictor wraps as PNG's does; its |signed value| is 0..128 read
 * unsigned, and those are summed in 16-bit lanes (odd and even bytes apart), which hold 255
 * vectors' worth before they are folded into a long. The Paeth predictor stays in 8-bit lanes:
 * pa = |b - c| and pb = |a - c| are unsigned max minus min, and pc = |(b - c) + (a - c)| is
 * pa + pb when the two differences have the same sign and |pa - pb| when not; pa + pb saturates at
 * 255, which changes no comparison since pa and pb are at most 255.
 */
final class PngVectors {
    private static final VectorSpecies<Byte> B = ByteVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_PREFERRED;
    /** Vectors a 16-bit lane can sum before it may pass 65535 (each adds at most 2 * 128). */
    private static final int FOLD = 255;

    private PngVectors() {}

    /** The five filters' sums of |filtered byte| over the row, into {@code sums[0..5)}; the row above is {@code up[prev ..]}. */
    static void sums(byte[] raw, int cur, byte[] up, int prev, int len, int bpp, long[] sums) {
        java.util.Arrays.fill(sums, 0);
        int i = Math.min(bpp, len), vl = B.length();
        PngFilters.sums(raw, cur, up, prev, bpp, 0, i, sums);
        long s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0;
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
        sums[0] += s0;
        sums[1] += s1;
        sums[2] += s2;
        sums[3] += s3;
        sums[4] += s4;
        PngFilters.sums(raw, cur, up, prev, bpp, i, len, sums);
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

    /** Filters the row with {@code type} (1 to 4) into {@code dst[d ..]}; the row above is {@code up[prev ..]}. */
    static void apply(int type, byte[] raw, int cur, byte[] up, int prev, int len, int bpp, byte[] dst, int d) {
        int i = Math.min(bpp, len), vl = B.length();
        PngFilters.apply(type, raw, cur, up, prev, bpp, 0, i, dst, d);
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
        PngFilters.apply(type, raw, cur, up, prev, bpp, i, len, dst, d);
    }
}
