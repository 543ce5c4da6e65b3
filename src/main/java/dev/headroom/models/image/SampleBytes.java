package dev.headroom.models.image;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * Floats to 8 or 16-bit big-endian samples, {@code round(clamp(v, 0, 1) * max)} as {@link ImageFiles#writePng}
 * rounds them: a vector at a time once {@link PngWarmup} has the vector code compiled, else one at a
 * time. Math.round is floor(v + 0.5) taken exactly, which is {@code (int) v + (v - (int) v >= 0.5 ? 1 : 0)}
 * for v >= 0 (v - (int) v is exact), not {@code (int) (v + 0.5f)} (the float sum can round up to
 * the next integer, as 0.49999997f + 0.5f does). NaN clamps to NaN, converts to 0 and rounds to 0,
 * as Math.round does.
 */
final class SampleBytes {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    /** The narrowed shapes below need 64 bits at least: with 128-bit vectors (4 floats: NEON, SSE) all is scalar. */
    private static final boolean VECTOR = F.length() >= 8;
    /** As many byte (short) lanes as F has floats: the rounded vector narrowed. */
    private static final VectorSpecies<Byte> B = VECTOR ? VectorSpecies.of(byte.class, VectorShape.forBitSize(F.length() * 8)) : null;
    private static final VectorSpecies<Short> S = VECTOR ? VectorSpecies.of(short.class, VectorShape.forBitSize(F.length() * 16)) : null;

    private SampleBytes() {}

    /** {@code n} floats from {@code data[from]} to {@code n * bytesPerSample} bytes at {@code raw[at]}. */
    static void round(float[] data, int from, int n, int bytesPerSample, byte[] raw, int at) {
        int i = PngWarmup.ready() ? vectors(data, from, n, bytesPerSample, raw, at) : 0;
        scalar(data, from, n, bytesPerSample, raw, at, i);
    }

    /** Values {@code i ..} of the n, one at a time. */
    static void scalar(float[] data, int from, int n, int bytesPerSample, byte[] raw, int at, int i) {
        if (bytesPerSample == 1) {
            for (; i < n; i++) raw[at + i] = (byte) Math.round(Math.clamp(data[from + i], 0f, 1f) * 255f);
        } else {
            for (; i < n; i++) {
                int v = Math.round(Math.clamp(data[from + i], 0f, 1f) * 65535f);
                raw[at + 2 * i] = (byte) (v >>> 8);
                raw[at + 2 * i + 1] = (byte) v;
            }
        }
    }

    /** The n values' whole vectors from the start; returns how many values that was. */
    static int vectors(float[] data, int from, int n, int bytesPerSample, byte[] raw, int at) {
        if (!VECTOR) return 0;
        int vl = F.length(), i = 0;
        if (bytesPerSample == 1) {
            for (; i + vl <= n; i += vl) {
                ((ByteVector) rounded(data, from + i, 255f).convertShape(VectorOperators.I2B, B, 0)).intoArray(raw, at + i);
            }
        } else {
            for (; i + vl <= n; i += vl) {
                IntVector v = rounded(data, from + i, 65535f);
                // high byte first: swapped within 16 bits, as a short's bytes are read little-endian
                IntVector swapped = v.lanewise(VectorOperators.LSHR, 8).or(v.lanewise(VectorOperators.LSHL, 8));
                swapped.convertShape(VectorOperators.I2S, S, 0).reinterpretAsBytes().intoArray(raw, at + 2 * i);
            }
        }
        return i;
    }

    /** round(clamp(v, 0, 1) * max) of the vector at data[i], as ints. */
    private static IntVector rounded(float[] data, int i, float max) {
        FloatVector v = FloatVector.fromArray(F, data, i).max(0f).min(1f).mul(max);
        IntVector whole = (IntVector) v.convert(VectorOperators.F2I, 0);
        FloatVector frac = v.sub((FloatVector) whole.convert(VectorOperators.I2F, 0));
        return whole.add(1, frac.compare(VectorOperators.GE, 0.5f).cast(I));
    }
}
