package dev.headroom.core.quant;

/**
 * A tensor's values in compact storage, expanded to fp32 just before use (a layer at a time):
 * <ul>
 * <li>INT8: a signed 8-bit code per value and an fp32 scale per output channel (the last
 *     dimension: {@code channels}), value = code * scale, scale = max|w| / 127 over the channel;
 * <li>FP8: an OCP fp8 e4m3 (E4M3FN, {@link Fp8}) code per value and an fp32 scale per output
 *     channel, value = decode(code) * scale, scale = max|w| / 448;
 * <li>NF4: bitsandbytes' 4-bit NormalFloat ({@link Nf4}): two codes a byte (the first value in
 *     the high nibble), blocks of {@code blocksize} values in storage order, value =
 *     table[code] * absmax[block].
 * </ul>
 * {@link #expand} is the fast expansion; {@link #expandReference} the slow, obvious one it is
 * tested against. Both give the same floats, bit for bit.
 *
 * @param codes     INT8/FP8: one byte per value; NF4: two values a byte
 * @param scales    INT8/FP8: per channel; NF4: absmax per block
 * @param table     NF4: the 16 code values (bitsandbytes' quant_map); else null
 * @param channels  INT8/FP8: the size of the last dimension (values i and i + channels share a scale)
 * @param blocksize NF4: values per absmax block
 */
public record Compact(Scheme scheme, long count, byte[] codes, float[] scales, float[] table, int channels, int blocksize) {
    public enum Scheme { INT8, FP8, NF4 }

    /** Bytes held: codes and scales (and the table). */
    public long bytes() {
        return codes.length + 4L * scales.length + (table == null ? 0 : 4L * table.length);
    }

    /** Quantizes {@code w} (whose last dimension has {@code channels} values) with a scale per channel. */
    public static Compact int8(float[] w, int channels) {
        float[] scale = channelMax(w, channels);
        for (int c = 0; c < channels; c++) scale[c] = scale[c] == 0 ? 1f : scale[c] / 127f;
        byte[] q = new byte[w.length];
        for (int i = 0; i < w.length; i++) q[i] = (byte) Math.max(-127, Math.min(127, Math.rint(w[i] / scale[i % channels])));
        return new Compact(Scheme.INT8, w.length, q, scale, null, channels, 0);
    }

    /** Quantizes {@code w} to fp8 e4m3 with a scale per channel of the last dimension. */
    public static Compact fp8(float[] w, int channels) {
        float[] scale = channelMax(w, channels);
        for (int c = 0; c < channels; c++) scale[c] = scale[c] == 0 ? 1f : scale[c] / Fp8.MAX;
        byte[] q = new byte[w.length];
        for (int i = 0; i < w.length; i++) q[i] = Fp8.encode(w[i] / scale[i % channels]);
        return new Compact(Scheme.FP8, w.length, q, scale, null, channels, 0);
    }

    /** Quantizes {@code w} in storage order to NF4 in blocks of {@code blocksize}, as bitsandbytes' quantize_4bit does. */
    public static Compact nf4(float[] w, int blocksize) {
        return Nf4.quantize(w, blocksize);
    }

    private static float[] channelMax(float[] w, int channels) {
        if (channels < 1 || w.length % channels != 0) throw new IllegalArgumentException(w.length + " values are not rows of " + channels + " channels");
        float[] m = new float[channels];
        for (int i = 0; i < w.length; i++) m[i % channels] = Math.max(m[i % channels], Math.abs(w[i]));
        return m;
    }

    /** The values in fp32, the fast way: row by row, the channel's scale from a register; NF4 a byte at a time. */
    public float[] expand() {
        int n = Math.toIntExact(count);
        float[] out = new float[n];
        switch (scheme) {
            case INT8 -> {
                for (int r = 0; r < n; r += channels)
                    for (int c = 0; c < channels; c++) out[r + c] = codes[r + c] * scales[c];
            }
            case FP8 -> {
                float[] lut = Fp8.TABLE;
                for (int r = 0; r < n; r += channels)
                    for (int c = 0; c < channels; c++) out[r + c] = lut[codes[r + c] & 0xff] * scales[c];
            }
            case NF4 -> {
                for (int b = 0, i = 0; i < n; b++) {
                    int v = codes[b] & 0xff;
                    out[i] = table[v >>> 4] * scales[i / blocksize];
                    i++;
                    if (i < n) {
                        out[i] = table[v & 15] * scales[i / blocksize];
                        i++;
                    }
                }
            }
        }
        return out;
    }

    /** The values in fp32, one at a time from the definitions above. */
    public float[] expandReference() {
        int n = Math.toIntExact(count);
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = switch (scheme) {
                case INT8 -> (float) codes[i] * scales[i % channels];
                case FP8 -> Fp8.decodeReference(codes[i]) * scales[i % channels];
                case NF4 -> {
                    int b = codes[i / 2] & 0xff;
                    int code = i % 2 == 0 ? b >> 4 : b & 0xf;
                    yield table[code] * scales[i / blocksize];
                }
            };
        }
        return out;
    }
}
