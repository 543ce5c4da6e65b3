package dev.headroom.models.image;

import dev.headroom.core.image.RowSink;
import java.io.IOException;
import java.nio.file.Path;

/**
 * Writes an image row band by row band as the rows become final ({@link RowSink}), into a
 * temporary file ({@link OutputFile}) that {@link #finish} renames onto the target; {@link #close}
 * without {@code finish} deletes it. PNG, TIFF and JPEG stream: memory stays at a few bands of rows
 * however large the image. WebP goes through an ImageIO writer that takes a whole image: it holds
 * the image as 8-bit samples, a quarter of its floats.
 */
public interface ImageWriter extends dev.headroom.core.image.SampleSink, AutoCloseable {

    /** Writes what is left and renames the file onto its target; every row must have been given. */
    void finish() throws IOException;

    /** Nanoseconds spent encoding (on all threads) and writing to the file, so far. */
    long encodeNanos();

    long writeNanos();

    /** Nanoseconds the caller waited for the encoders to catch up (their queue full), so far. */
    default long waitNanos() {
        return 0;
    }

    /** Deletes the temporary file unless {@link #finish} completed. */
    @Override
    void close() throws IOException;

    /**
     * A writer for a width x height image of {@code channels} (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA)
     * at {@code bitDepth} (8 or 16; JPEG and WebP store 8). Refuses, before anything is written,
     * what the format cannot hold (an alpha channel in JPEG, WebP beyond 16383 pixels a side).
     */
    static ImageWriter open(Path target, Encoding enc, int width, int height, int channels, int bitDepth) throws IOException {
        if (channels < 1 || channels > 4) throw new IllegalArgumentException(channels + " channels: images have 1 to 4");
        if (bitDepth != 8 && bitDepth != 16) throw new IllegalArgumentException("bit depth " + bitDepth + ": use 8 or 16");
        return switch (enc.format()) {
            case PNG -> new PngWriter(OutputFile.create(target), width, height, channels, bitDepth, enc.pngLevel());
            case TIFF -> new TiffWriter(OutputFile.create(target), width, height, channels, bitDepth, enc.pngLevel());
            case JPEG -> {
                ImageIoWriter.refuse(enc, width, height, channels);
                yield new JpegWriter(OutputFile.create(target), width, height, channels, enc.quality());
            }
            case WEBP -> ImageIoWriter.open(target, enc, width, height, channels, bitDepth);
        };
    }
}
