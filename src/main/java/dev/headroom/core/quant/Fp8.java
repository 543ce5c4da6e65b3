package dev.headroom.core.quant;

/**
 * OCP 8-bit floating point E4M3 (the "FN" variant Hopper computes in): 1 sign bit, 4 exponent
 * bits with bias 7, 3 mantissa bits; no infinities; S.1111.111 is NaN; largest finite 448;
 * subnormals below 2^-6 in steps of 2^-9. {@link #encode} rounds to nearest, ties to even, and
 * saturates to +-448; {@link #encodeReference} finds the nearest code by search, for tests.
 */
public final class Fp8 {
    public static final float MAX = 448f;

    private Fp8() {}

    /** Every code's value (NaN for the two NaN codes). */
    static final float[] TABLE = new float[256];

    static {
        for (int c = 0; c < 256; c++) TABLE[c] = decodeReference((byte) c);
    }

    /** The value of {@code code}, from the definition. */
    public static float decodeReference(byte code) {
        int c = code & 0xff, s = c >> 7, e = (c >> 3) & 15, m = c & 7;
        if (e == 15 && m == 7) return Float.NaN;
        double v = e == 0 ? m / 8.0 * Math.pow(2, -6) : (1 + m / 8.0) * Math.pow(2, e - 7);
        return (float) (s == 1 ? -v : v);
    }

    public static float decode(byte code) {
        return TABLE[code & 0xff];
    }

    /** The nearest code to {@code x} (ties to an even mantissa), saturating at +-448; NaN stays NaN. */
    public static byte encode(float x) {
        if (Float.isNaN(x)) return (byte) 0x7f;
        int sign = x < 0 || (x == 0 && 1 / x < 0) ? 0x80 : 0;
        float a = Math.abs(x);
        if (a >= MAX) return (byte) (sign | 0x7e);
        int code;
        if (a < 0x1p-6f) {
            int m = (int) Math.rint(a * 0x1p9f);   // subnormal steps of 2^-9; 8 steps is the smallest normal, code 8
            code = m;
        } else {
            int e = Math.getExponent(a);
            int m = (int) Math.rint((Math.scalb(a, -e) - 1f) * 8f);
            if (m == 8) {
                m = 0;
                e++;
            }
            code = (e + 7) << 3 | m;
            if (code > 0x7e) code = 0x7e;
        }
        return (byte) (sign | code);
    }

    /** {@link #encode} by searching every finite code for the nearest (ties to the even code), for tests. */
    public static byte encodeReference(float x) {
        if (Float.isNaN(x)) return (byte) 0x7f;
        int best = -1;
        double bestErr = Double.MAX_VALUE;
        for (int c = 0; c < 256; c++) {
            float v = decodeReference((byte) c);
            if (Float.isNaN(v)) continue;
            if ((c & 0x80) != 0 && v == 0) continue;   // -0 only for negative inputs, below
            double err = Math.abs((double) Math.max(-MAX, Math.min(MAX, x)) - v);
            if (err < bestErr || err == bestErr && (c & 1) == 0) {
                best = c;
                bestErr = err;
            }
        }
        if (best == 0 && (x < 0 || (x == 0 && 1 / x < 0))) best = 0x80;
        return (byte) best;
    }
}
