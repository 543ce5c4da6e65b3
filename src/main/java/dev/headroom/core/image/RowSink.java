package dev.headroom.core.image;

/**
 * Where an image's rows go as soon as they are final, top to bottom: an encoder streaming to a
 * file, or a whole image being filled. {@code data} holds {@code rows} rows of {@code width *
 * channels} interleaved floats in [0, 1] from {@code offset}; it belongs to the caller and may be
 * reused after the call returns.
 */
public interface RowSink {
    void rows(float[] data, int offset, int rows);

    /** A sink that fills {@code img} from its first row on. */
    static RowSink into(FloatImage img) {
        int[] next = {0};
        int rowLength = img.width() * img.channels();
        return (data, offset, rows) -> {
            System.arraycopy(data, offset, img.data(), next[0] * rowLength, rows * rowLength);
            next[0] += rows;
        };
    }
}
