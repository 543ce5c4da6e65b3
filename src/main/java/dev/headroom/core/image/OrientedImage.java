package dev.headroom.core.image;

/**
 * An image shown upright by its EXIF orientation ({@link Orientation}) without turning its pixels:
 * a view that reads each pixel from where it is stored, so a turned JPEG is held once, as its
 * decoded samples, rather than as floats twice over (the decoded and the turned image: 24 bytes a
 * pixel of RGB against 3). The floats are those of {@link Orientation#apply} on the stored image's,
 * bit for bit. Rows of orientations 2-4 are stored rows (reversed for 2 and 3); rows of 5-8 are
 * stored columns, read a pixel at a time.
 */
public final class OrientedImage implements InputImage {
    private final InputImage stored;
    private final int orientation;

    private OrientedImage(InputImage stored, int orientation) {
        this.stored = stored;
        this.orientation = orientation;
    }

    /** {@code stored} shown by {@code orientation}; 1 (and values outside 2..8) give {@code stored} itself. */
    public static InputImage of(InputImage stored, int orientation) {
        return orientation < 2 || orientation > 8 ? stored : new OrientedImage(stored, orientation);
    }

    private boolean swaps() {
        return orientation >= 5;
    }

    @Override public int width() { return swaps() ? stored.height() : stored.width(); }
    @Override public int height() { return swaps() ? stored.width() : stored.height(); }
    @Override public int channels() { return stored.channels(); }
    @Override public int bitDepth() { return stored.bitDepth(); }

    @Override
    public void floats(int y, int x, int n, float[] dst, int off) {
        int w = stored.width(), h = stored.height(), c = stored.channels();
        if (y < 0 || y >= height() || x < 0 || n < 0 || x + n > width()) throw new IndexOutOfBoundsException(n + " pixels at " + x + "," + y + " of " + width() + "x" + height());
        switch (orientation) {
            case 2, 3 -> {
                // a stored row, right to left: read the span, then reverse its pixels
                stored.floats(orientation == 2 ? y : h - 1 - y, w - x - n, n, dst, off);
                for (int i = 0, j = n - 1; i < j; i++, j--) {
                    for (int ch = 0; ch < c; ch++) {
                        float t = dst[off + i * c + ch];
                        dst[off + i * c + ch] = dst[off + j * c + ch];
                        dst[off + j * c + ch] = t;
                    }
                }
            }
            case 4 -> stored.floats(h - 1 - y, x, n, dst, off);
            default -> {
                for (int i = 0; i < n; i++) {
                    int vx = x + i, sx, sy;   // (sx, sy): the stored pixel shown at (vx, y), as Orientation.apply maps it
                    switch (orientation) {
                        case 5 -> { sx = y; sy = vx; }
                        case 6 -> { sx = y; sy = h - 1 - vx; }
                        case 7 -> { sx = w - 1 - y; sy = h - 1 - vx; }
                        default -> { sx = w - 1 - y; sy = vx; }
                    }
                    stored.floats(sy, sx, 1, dst, off + i * c);
                }
            }
        }
    }

    @Override
    public InputImage channels(int from, int count) {
        return new OrientedImage(stored.channels(from, count), orientation);
    }

    @Override
    public InputImage repeatChannel(int count) {
        return new OrientedImage(stored.repeatChannel(count), orientation);
    }

    @Override
    public FloatImage toFloat() {
        FloatImage out = FloatImage.blank(width(), height(), channels(), bitDepth());
        int stride = width() * channels();
        for (int y = 0; y < height(); y++) floats(y, 0, width(), out.data(), y * stride);
        return out;
    }

    @Override
    public void close() {
        stored.close();
    }
}
