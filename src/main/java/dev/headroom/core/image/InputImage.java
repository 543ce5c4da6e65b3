package dev.headroom.core.image;

/**
 * An input image as the tiler reads it: (height, width, channels) samples seen as floats in [0, 1],
 * a row span at a time. {@link FloatImage} holds the floats; {@link SampleImage} holds the decoded
 * 8- or 16-bit samples (a quarter or half of the bytes) and converts only the spans asked for, to
 * the same floats ({@code sample / max}) the float image would hold.
 */
public interface InputImage {
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
}
