package dev.headroom.runtime;

import dev.headroom.core.image.SampleSink;

/**
 * The rows of a tiled upscale's output that tiles are still being added into, kept where the
 * tiles run ({@link Ops#outputWindow}): each tile's output is added with its blend weights where
 * it was computed, and rows that every tile has reached leave as 8 or 16 bit samples, so neither
 * the tiles' fp32 outputs nor a band of fp32 rows ever comes to the host. Rows are addressed by
 * their output row; the window holds {@code capacity} consecutive ones at a time (a ring).
 *
 * <p>The arithmetic is the host blend's, so both give the same samples bit for bit.
 */
public interface OutputWindow extends AutoCloseable {

    /**
     * Adds image {@code b} of {@code y} (a tile's output, of this backend or the host; it may be
     * longer than {@code rows x cols}, the padding's output, which is left out) into output rows
     * from {@code row} and columns from {@code col}:
     * {@code out[row + py][col + px] += (wy[py] * wx[px]) * (y[b][py][px] * scale)}. The weight
     * arrays are an image's tile spans', the same few arrays again and again (kept by identity).
     */
    void add(Tensor y, int b, int rows, int cols, float[] wy, float[] wx, float scale, int row, int col);

    /**
     * Gives output rows [from, from + rows) to {@code sink} as its samples ({@link SampleSink#sampleBits}),
     * in bands, and clears them for the rows that follow. Waits for the work issued so far.
     * {@code gray}: a window of 3 channels gives one sample a pixel, the channels' mean
     * {@code ((c0 + c1) + c2) / 3} in float before rounding, as {@link ImageUpscaler} makes a gray
     * image's output from an RGB model's on the host.
     */
    void emit(int from, int rows, boolean gray, SampleSink sink);

    /** Nanoseconds {@link #emit} waited for the device (tiles still running) rather than converting and copying. */
    long waitNanos();

    /** Device bytes a window takes: the fp32 ring and at most {@link #BAND_BYTES} of samples on their way home. */
    static long bytes(int width, int capacity, int channels) {
        return dev.headroom.core.plan.Planner.outputWindowBytes(width, capacity, channels);
    }

    /** Samples converted and sent home per band: 16 MiB is about 340 rows of a 16384-pixel RGB output. */
    long BAND_BYTES = dev.headroom.core.plan.Planner.WINDOW_BAND_BYTES;

    /** Frees the window's memory (once nothing queued uses it). */
    @Override
    void close();
}
