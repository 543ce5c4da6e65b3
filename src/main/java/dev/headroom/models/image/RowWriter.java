package dev.headroom.models.image;

import java.io.Closeable;
import java.io.IOException;
import java.util.Collection;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What the image writers share: the image's shape as stored (width, height, channels, bytes per
 * sample and per row), the rows given so far (a band past the last row and a finish before it are
 * refused), and the nanoseconds spent encoding (added to by encoding threads too) and writing.
 */
abstract class RowWriter implements ImageWriter {
    protected final int width, height, channels, bytesPerSample, rowBytes;
    protected int rowsGiven;
    protected final AtomicLong encodeNanos = new AtomicLong();
    protected long writeNanos;

    /** A writer of {@code channels} samples of {@code bitDepth} (8 or 16) bits per pixel, as the file stores them. */
    RowWriter(int width, int height, int channels, int bitDepth) {
        if (width < 1 || height < 1) throw new IllegalArgumentException("image of " + width + "x" + height + " pixels");
        this.width = width;
        this.height = height;
        this.channels = channels;
        this.bytesPerSample = bitDepth / 8;
        this.rowBytes = Math.multiplyExact(width, channels * bytesPerSample);
    }

    /** Puts row {@code y} of a band as the file's samples at {@code dst[at]}. */
    protected interface RowSamples {
        void put(int y, byte[] dst, int at);
    }

    /** Refuses a band of {@code rows} that would go past the image's last row. */
    protected final void checkBand(int rows) {
        if (rowsGiven + rows > height) throw new IllegalStateException((rowsGiven + rows) + " rows given to a " + height + "-row image");
    }

    /** Refuses to finish a {@code format} file before every row was given. */
    protected final void checkComplete(Object format) {
        if (rowsGiven != height) throw new IllegalStateException(format + " of " + height + " rows finished after " + rowsGiven);
    }

    /** The result of an encoding task, its failure as an IOException that says which format failed. */
    protected static <T> T result(Future<T> task, String format) throws IOException {
        try {
            return task.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while encoding", e);
        } catch (ExecutionException e) {
            throw new IOException(format + " encoding failed: " + e.getCause(), e.getCause());
        }
    }

    /** An unfinished file given up: the encoding tasks cancelled, the stream closed, the temporary file deleted. */
    protected static void abandon(Collection<? extends Future<?>> pending, Closeable out, OutputFile file) throws IOException {
        for (Future<?> f : pending) f.cancel(true);
        pending.clear();
        try {
            out.close();
        } finally {
            file.close();
        }
    }

    @Override
    public final long encodeNanos() {
        return encodeNanos.get();
    }

    @Override
    public final long writeNanos() {
        return writeNanos;
    }
}
