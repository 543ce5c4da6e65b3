package dev.headroom.core.image;

/**
 * A {@link RowSink} that also takes rows already converted to its samples, so a backend that
 * blends on the device sends home 8 or 16 bit samples instead of floats (a quarter or half of
 * the bytes). Samples are {@code round(clamp(v, 0, 1) * max)}, as the float path computes them.
 */
public interface SampleSink extends RowSink {
    /** The bits per sample {@link #sampleRows} takes (8 or 16), or 0 when this sink takes floats only. */
    int sampleBits();

    /**
     * {@code rows} rows of {@code width * channels} interleaved samples from {@code offset}: one
     * byte each at 8 bits, two (big-endian) at 16. The array is the caller's again after the call.
     */
    void sampleRows(byte[] samples, int offset, int rows);
}
