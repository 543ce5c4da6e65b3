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
    private final int stride;       // samples a pixel's group has in the array (more than channels in a view of some channels)

    private SampleImage(int width, int height, int channels, byte[] bytes, short[] shorts, int[] order) {
        this(width, height, channels, bytes, shorts, order, channels);
    }

    private SampleImage(int width, int height, int channels, byte[] bytes, short[] shorts, int[] order, int stride) {
        if (width < 1 || height < 1) throw new IllegalArgumentException("image of " + width + "x" + height + " pixels");
        int length = bytes != null ? bytes.length : shorts.length;
        if ((long) width * height * stride != length) throw new IllegalArgumentException("image data does not match " + width + "x" + height + "x" + stride);
        this.stride = stride;
        this.width = width;
        this.height = height;
        this.channels = channels;
        this.bitDepth = bytes != null ? 8 : 16;
        this.bytes = bytes;
        this.shorts = shorts;
        this.order = order.clone();
        if (order.length != channels) throw new IllegalArgumentException(order.length + " band offsets for " + channels + " channels");
        for (int o : order) if (o < 0 || o >= stride) throw new IllegalArgumentException("band offset " + o + " for " + stride + " samples a pixel");
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

    @Override public int width() { return width; }
    @Override public int height() { return height; }
    @Override public int channels() { return channels; }
    @Override public int bitDepth() { return bitDepth; }

    /** Bytes held by the samples (what this image retains beyond a few fields; a view of some channels shares them). */
    public long sampleBytes() {
        return bytes != null ? bytes.length : 2L * shorts.length;
    }

    @Override
    public void floats(int y, int x, int n, float[] dst, int off) {
        int src = (y * width + x) * stride, count = n * channels;
        for (int c = 0; c < channels; c++) {
            int from = src + order[c];
            if (bytes != null) {
                float max = 255;
                for (int i = c; i < count; i += channels, from += stride) dst[off + i] = (bytes[from] & 0xff) / max;
            } else {
                float max = 65535;
                for (int i = c; i < count; i += channels, from += stride) dst[off + i] = (shorts[from] & 0xffff) / max;
            }
        }
    }

    /** Channels [from, from + count) as a view of the same samples (no copy). */
    @Override
    public SampleImage channels(int from, int count) {
        if (from < 0 || count < 1 || from + count > channels) throw new IllegalArgumentException("channels " + from + "+" + count + " of " + channels);
        return new SampleImage(width, height, count, bytes, shorts, java.util.Arrays.copyOfRange(order, from, from + count), stride);
    }

    /** The first channel {@code count} times, as a view of the same samples (no copy). */
    @Override
    public SampleImage repeatChannel(int count) {
        int[] o = new int[count];
        java.util.Arrays.fill(o, order[0]);
        return new SampleImage(width, height, count, bytes, shorts, o, stride);
    }

    @Override
    public FloatImage toFloat() {
        FloatImage out = FloatImage.blank(width, height, channels, bitDepth);
        for (int y = 0; y < height; y++) floats(y, 0, width, out.data(), y * width * channels);
        return out;
    }
}
