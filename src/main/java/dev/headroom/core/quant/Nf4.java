package dev.headroom.core.quant;

/**
 * bitsandbytes' 4-bit NormalFloat, as its quantize_4bit / dequantize_4bit (default backend) do it:
 * the values in storage order are cut into blocks of {@code blocksize} (64 by default); each
 * block keeps absmax = max |w|, each value the index of the nearest entry of {@link #TABLE} to
 * clamp(w * (1 / absmax), -1, 1) (torch.bucketize over the midpoints: a value exactly on a
 * midpoint takes the lower entry), two indices a byte with the first in the high nibble; a value
 * is TABLE[index] * absmax. Double quantization (bitsandbytes' compress_statistics) stores the
 * absmax values themselves 8-bit in blocks of 256, offset by their mean: {@link #nestedAbsmax}.
 */
public final class Nf4 {
    private Nf4() {}

    /** bitsandbytes' NF4 code table (functional.get_4bit_type("nf4")), exactly. */
    public static final float[] TABLE = {
            -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
            -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
            0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
            0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f};

    private static final float[] MIDPOINTS = new float[15];

    static {
        for (int i = 0; i < 15; i++) MIDPOINTS[i] = (TABLE[i] + TABLE[i + 1]) / 2;
    }

    static Compact quantize(float[] w, int blocksize) {
        int n = w.length, blocks = (n + blocksize - 1) / blocksize;
        float[] absmax = new float[blocks];
        for (int i = 0; i < n; i++) absmax[i / blocksize] = Math.max(absmax[i / blocksize], Math.abs(w[i]));
        byte[] packed = new byte[(n + 1) / 2];
        for (int i = 0; i < n; i++) {
            float inv = 1f / Math.max(absmax[i / blocksize], 1e-38f);
            float v = Math.max(-1f, Math.min(1f, w[i] * inv));
            int q = 0;
            while (q < 15 && MIDPOINTS[q] < v) q++;   // bucketize, right=False
            packed[i / 2] |= (byte) (i % 2 == 0 ? q << 4 : q);
        }
        return new Compact(Compact.Scheme.NF4, n, packed, absmax, TABLE.clone(), 0, blocksize);
    }

    /**
     * The absmax values of a double-quantized NF4 tensor: code[q[i]] * nested[i / nestedBlocksize] + offset,
     * in fp32 (bitsandbytes' dequantize_blockwise of the 8-bit absmax, then += offset).
     */
    public static float[] nestedAbsmax(byte[] q, float[] code, float[] nested, int nestedBlocksize, float offset) {
        float[] out = new float[q.length];
        for (int i = 0; i < q.length; i++) out[i] = code[q[i] & 0xff] * nested[i / nestedBlocksize] + offset;
        return out;
    }
}
