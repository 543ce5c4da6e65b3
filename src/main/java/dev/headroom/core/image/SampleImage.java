package dev.headroom.core.image;

/**
 * An input image kept as its decoded samples: 8-bit in a byte[] or 16-bit in a short[], interleaved
 * (height, width, channels). An 8192x8192 RGB input is 201 MB here against 805 MB as floats;
 * the tiler converts each tile as it cuts it ({@link #floats}), to exactly the floats
 * {@code sample / max} that {@link FloatImage} would hold.
 */
public final class SampleImage implements InputImage {
    private final int width, height, channels, bitDepth;
    private final byte[] bytes;     // 8-bit samples, or null
    private final short[] shorts;   // 16-bit samples, or null
    private final int[] order;      // channel c of a pixel is sample order[c] of its group (the decoder's band order)

    private SampleImage(int width, int height, int channels, byte[] bytes, short[] shorts, int[] order) {
        if (width < 1 || height < 1) throw new IllegalArgumentException("image of " + width + "x" + height + " pixels");
        int length = bytes != null ? bytes.length : shorts.length;
        if ((long) width * height * channels != length) throw new IllegalArgumentException("image data does not match " + width + "x" + height + "x" + channels);
        this.width = width;
        this.height = height;
        this.channels = channels;
        this.bitDepth = bytes != null ? 8 : 16;
        this.bytes = bytes;
        this.shorts = shorts;
        this.order = order.clone();
        if (order.length != channels) throw new IllegalArgumentException(order.length + " band offsets for " + channels + " channels");
        for (int o : order) if (o < 0 || o >= channels) throw new IllegalArgumentException("band offset " + o + " for " + channels + " channels");
    }

    private static int[] inOrder(int channels) {
        return java.util.stream.IntStream.range(0, channels).toArray();
    }

    /** 8-bit samples, unsigned in each byte. */
    public static SampleImage of8(int width, int height, int channels, byte[] samples) {
        return new SampleImage(width, height, channels, samples, null, inOrder(channels));
    }

    /** 8-bit samples whose pixel's channel c is at offset order[c] of its group (BGR is {2, 1, 0}): a decoder's array as it is. */
    public static SampleImage of8(int width, int height, byte[] samples, int[] order) {
        return new SampleImage(width, height, order.length, samples, null, order);
    }

    /** As {@link #of8(int, int, byte[], int[])} for 16-bit samples. */
    public static SampleImage of16(int width, int height, short[] samples, int[] order) {
        return new SampleImage(width, height, order.length, null, samples, order);
    }

    /** 16-bit samples, unsigned in each short. */
    public static SampleImage of16(int width, int height, int channels, short[] samples) {
        return new SampleImage(width, height, channels, null, samples, inOrder(channels));
    }

    private static SampleImage blankLike(SampleImage like, int channels) {
        int n = Math.multiplyExact(Math.multiplyExact(like.width, like.height), channels);
        return like.bytes != null ? of8(like.width, like.height, channels, new byte[n]) : of16(like.width, like.height, channels, new short[n]);
    }

    @Override public int width() { return width; }
    @Override public int height() { return height; }
    @Override public int channels() { return channels; }
    @Override public int bitDepth() { return bitDepth; }

    /** Bytes held by the samples (what this image retains beyond a few fields). */
    public long sampleBytes() {
        return bytes != null ? bytes.length : 2L * shorts.length;
    }

    @Override
    public void floats(int y, int x, int n, float[] dst, int off) {
        int src = (y * width + x) * channels, count = n * channels;
        for (int c = 0; c < channels; c++) {
            int from = src + order[c];
            if (bytes != null) {
                float max = 255;
                for (int i = c; i < count; i += channels, from += channels) dst[off + i] = (bytes[from] & 0xff) / max;
            } else {
                float max = 65535;
                for (int i = c; i < count; i += channels, from += channels) dst[off + i] = (shorts[from] & 0xffff) / max;
            }
        }
    }

    @Override
    public SampleImage channels(int from, int count) {
        SampleImage out = blankLike(this, count);
        for (int p = 0; p < width * height; p++) {
            for (int c = 0; c < count; c++) {
                if (bytes != null) out.bytes[p * count + c] = bytes[p * channels + order[from + c]];
                else out.shorts[p * count + c] = shorts[p * channels + order[from + c]];
            }
        }
        return out;
    }

    @Override
    public SampleImage repeatChannel(int count) {
        SampleImage out = blankLike(this, count);
        for (int p = 0; p < width * height; p++) {
            for (int c = 0; c < count; c++) {
                if (bytes != null) out.bytes[p * count + c] = bytes[p * channels + order[0]];
                else out.shorts[p * count + c] = shorts[p * channels + order[0]];
            }
        }
        return out;
    }

    @Override
    public FloatImage toFloat() {
        FloatImage out = FloatImage.blank(width, height, channels, bitDepth);
        for (int y = 0; y < height; y++) floats(y, 0, width, out.data(), y * width * channels);
        return out;
    }
}
