package dev.headroom.core.image;

/**
 * An input image as the tiler reads it: (height, width, channels) samples seen as floats in [0, 1],
 * a row span at a time. {@link FloatImage} holds the floats; {@link SampleImage} holds the decoded
 * 8- or 16-bit samples (a quarter or half of the bytes) and converts only the spans asked for, to
 * the same floats ({@code sample / max}) the float image would hold; a streamed PNG or JPEG decodes rows
 * as they are asked for and drops them when {@linkplain #release released}.
 */
public interface InputImage extends AutoCloseable {
    int width();

    int height();

    int channels();

    /** The source's depth, 8 or 16, so output can keep it. */
    int bitDepth();

    /** Pixels [x, x+n) of row y, every channel, as floats in [0, 1] into dst from off. */
    void floats(int y, int x, int n, float[] dst, int off);

    /** Channels [from, from+count) as a new image of the same kind. */
    InputImage channels(int from, int count);

    /** A copy with channel 0 repeated {@code count} times (gray to RGB), of the same kind. */
    InputImage repeatChannel(int count);

    /** The whole image as floats (this, for a float image). */
    FloatImage toFloat();

    /**
     * Rows above {@code below} will not be read again: an image decoded by rows may drop them
     * (the tiler calls this as it moves down the image). Held images ignore it.
     */
    default void release(int below) {}

    /** Gives back what the image holds open (a streamed image's file); nothing for held images. */
    @Override
    default void close() {}
}
