package dev.headroom.core.image;

/**
 * An image as (height, width, channels) interleaved floats, nominally in [0, 1].
 * {@code bitDepth} remembers the source's depth (8 or 16) so output can keep it.
 */
public record FloatImage(int width, int height, int channels, float[] data, int bitDepth) implements InputImage {
    public FloatImage {
        if (width < 1 || height < 1) throw new IllegalArgumentException("image of " + width + "x" + height + " pixels");
        if ((long) width * height * channels != data.length) throw new IllegalArgumentException("image data does not match " + width + "x" + height + "x" + channels);
    }

    public static FloatImage blank(int width, int height, int channels, int bitDepth) {
        return new FloatImage(width, height, channels, new float[Math.multiplyExact(Math.multiplyExact(width, height), channels)], bitDepth);
    }

    public float get(int x, int y, int c) {
        return data[(y * width + x) * channels + c];
    }

    public void set(int x, int y, int c, float v) {
        data[(y * width + x) * channels + c] = v;
    }

    @Override
    public void floats(int y, int x, int n, float[] dst, int off) {
        System.arraycopy(data, (y * width + x) * channels, dst, off, n * channels);
    }

    @Override
    public FloatImage toFloat() {
        return this;
    }

    public long pixels() {
        return (long) width * height;
    }

    /** Channels [from, from+count) as a new image. */
    @Override
    public FloatImage channels(int from, int count) {
        FloatImage out = blank(width, height, count, bitDepth);
        for (int p = 0; p < width * height; p++) System.arraycopy(data, p * channels + from, out.data, p * count, count);
        return out;
    }

    /** A copy with channel 0 repeated {@code count} times (gray to RGB). */
    @Override
    public FloatImage repeatChannel(int count) {
        FloatImage out = blank(width, height, count, bitDepth);
        for (int p = 0; p < width * height; p++) for (int c = 0; c < count; c++) out.data[p * count + c] = data[p * channels];
        return out;
    }

    /** Stacks the channels of several same-sized images. */
    public static FloatImage stack(FloatImage... parts) {
        int c = 0;
        for (FloatImage p : parts) c += p.channels;
        FloatImage first = parts[0];
        FloatImage out = blank(first.width, first.height, c, first.bitDepth);
        int off = 0;
        for (FloatImage p : parts) {
            if (p.width != first.width || p.height != first.height) throw new IllegalArgumentException("stacking images of different sizes");
            for (int i = 0; i < first.width * first.height; i++) System.arraycopy(p.data, i * p.channels, out.data, i * c + off, p.channels);
            off += p.channels;
        }
        return out;
    }
}
