package dev.headroom.runtime;

import dev.headroom.core.image.InputImage;
import dev.headroom.core.image.Resample;
import dev.headroom.core.image.RowSink;
import dev.headroom.core.image.SampleSink;

/**
 * The sink an {@link ImageUpscaler} gives the tiler for a gray or alpha image: it turns the colour
 * rows the model makes back into the image's channel layout, a band at a time, and passes them on.
 * Gray from an RGB model is the channels' mean; alpha is the input's alpha resampled bicubic
 * ({@link Resample.Rows}, reading the alpha a few rows at a time) and put back after the colour.
 *
 * <p>Rows come either as the host blend's floats in the model's channels, or, when the tiles blend
 * on the device, as samples already made gray there ({@link OutputWindow#emit}); alpha samples are
 * rounded here as the writers round floats, {@code round(clamp(a, 0, 1) * max)}, so both ways give
 * the same samples bit for bit. Memory is one band and {@link #ALPHA_ROWS} rows of alpha.
 */
final class JoinedRows implements SampleSink {
    /** Alpha rows resampled at a time for a band of samples (its floats: this many output rows). */
    static final int ALPHA_ROWS = 64;
    /** Pixels in a band from which its join runs on several cores (the property is for benchmarks: a huge value keeps it on one). */
    static final long PARALLEL_PIXELS = Long.getLong("headroom.resample.parallel-values", 1 << 18);

    private final RowSink sink;
    private final int channels, modelChannels, outW;
    private final boolean gray, alpha;
    private final Resample.Rows alphaRows;
    /** The next output row. */
    private int next;
    private float[] floats = new float[0], alphaBand = new float[0];
    private byte[] samples = new byte[0];

    /**
     * @param in the input image (its channels are the output's); its alpha, if any, is read from a
     *           view of it ({@link InputImage#channels}) as the rows go
     */
    JoinedRows(InputImage in, int modelChannels, int scale, RowSink sink) {
        this.sink = sink;
        this.channels = in.channels();
        this.modelChannels = modelChannels;
        this.alpha = channels == 2 || channels == 4;
        this.gray = channels <= 2 && modelChannels == 3;
        this.outW = in.width() * scale;
        this.alphaRows = alpha ? new Resample.Rows(in.channels(channels - 1, 1), outW, in.height() * scale) : null;
    }

    /** Whether rows of the model's channels are made gray (their mean) on the way. */
    boolean gray() {
        return gray;
    }

    @Override
    public int sampleBits() {
        return sink instanceof SampleSink s ? s.sampleBits() : 0;
    }

    /** The host blend's rows: floats in the model's channels. */
    @Override
    public void rows(float[] data, int offset, int rows) {
        int pixels = rows * outW, c = channels, mc = modelChannels;
        if (floats.length < pixels * c) floats = new float[pixels * c];
        float[] out = floats;
        if (alpha) {
            if (alphaBand.length < pixels) alphaBand = new float[pixels];
            alphaRows.rows(next, rows, alphaBand);
        }
        for (int p = 0; p < pixels; p++) {
            int s = offset + p * mc, d = p * c;
            if (gray) out[d] = (data[s] + data[s + 1] + data[s + 2]) / 3f;
            else for (int ch = 0; ch < c - (alpha ? 1 : 0); ch++) out[d + ch] = data[s + ch];
            if (alpha) out[d + c - 1] = alphaBand[p];
        }
        next += rows;
        sink.rows(out, 0, rows);
    }

    /** The device's rows: samples of the colour channels (one if gray), the alpha's joined here. */
    @Override
    public void sampleRows(byte[] color, int offset, int rows) {
        SampleSink to = (SampleSink) sink;
        if (!alpha) {
            next += rows;
            to.sampleRows(color, offset, rows);
            return;
        }
        int bytes = to.sampleBits() / 8, cc = channels - 1, c = channels;
        float max = bytes == 1 ? 255f : 65535f;
        int pixels = rows * outW;
        if (samples.length < pixels * c * bytes) samples = new byte[pixels * c * bytes];
        if (alphaBand.length < Math.min(rows, ALPHA_ROWS) * outW) alphaBand = new float[Math.min(rows, ALPHA_ROWS) * outW];
        for (int done = 0; done < rows; ) {
            int n = Math.min(ALPHA_ROWS, rows - done);
            alphaRows.rows(next + done, n, alphaBand);
            int first = done;
            java.util.stream.IntStream band = java.util.stream.IntStream.range(0, n);
            (n > 1 && (long) n * outW >= PARALLEL_PIXELS ? band.parallel() : band)
                    .forEach(r -> join(color, offset, first + r, r, cc, bytes, max));
            done += n;
        }
        next += rows;
        to.sampleRows(samples, 0, rows);
    }

    /** Row {@code row} of the band into {@link #samples}: its colour from {@code color}, its alpha from row r of the alpha band, rounded. */
    private void join(byte[] color, int offset, int row, int r, int cc, int bytes, float max) {
        // a pixel's colour is 1-6 bytes: copied in a loop (an arraycopy call a pixel cost more than the copy)
        int colorBytes = cc * bytes, pixelBytes = (cc + 1) * bytes;
        int s = offset + row * outW * colorBytes, d = row * outW * pixelBytes;
        float[] a = alphaBand;
        for (int q = r * outW, end = q + outW; q < end; q++, s += colorBytes, d += pixelBytes) {
            for (int k = 0; k < colorBytes; k++) samples[d + k] = color[s + k];
            int v = Math.round(Math.clamp(a[q], 0f, 1f) * max);
            if (bytes == 1) samples[d + cc] = (byte) v;
            else {
                samples[d + 2 * cc] = (byte) (v >>> 8);
                samples[d + 2 * cc + 1] = (byte) v;
            }
        }
    }
}
