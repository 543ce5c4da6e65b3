package dev.headroom.testing;

import dev.headroom.core.image.SampleSink;
import java.io.ByteArrayOutputStream;

/**
 * A {@link SampleSink} that keeps every sample it is given, in order: sample rows as they come,
 * float rows converted as the writers convert them ({@code round(clamp(v, 0, 1) * max)},
 * 16-bit big-endian), so a device's samples and the host's floats compare byte for byte.
 */
public final class SampleCollector implements SampleSink {
    private final int bits, rowValues;
    private final ByteArrayOutputStream got = new ByteArrayOutputStream();
    /** How many calls brought floats, and how many samples. */
    public int floatBands, sampleBands;

    /** @param rowValues samples per row (width times channels) */
    public SampleCollector(int bits, int rowValues) {
        this.bits = bits;
        this.rowValues = rowValues;
    }

    public byte[] bytes() {
        return got.toByteArray();
    }

    @Override
    public int sampleBits() {
        return bits;
    }

    @Override
    public void sampleRows(byte[] samples, int offset, int rows) {
        got.write(samples, offset, rows * rowValues * bits / 8);
        sampleBands++;
    }

    @Override
    public void rows(float[] data, int offset, int rows) {
        float max = bits == 8 ? 255f : 65535f;
        for (int i = 0; i < rows * rowValues; i++) {
            int q = Math.round(Math.clamp(data[offset + i], 0f, 1f) * max);
            if (bits == 16) got.write(q >>> 8);
            got.write(q);
        }
        floatBands++;
    }
}
