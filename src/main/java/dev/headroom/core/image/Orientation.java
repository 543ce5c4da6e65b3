package dev.headroom.core.image;

/**
 * EXIF orientation (TIFF tag 274): how the stored pixels must be turned to be shown upright, as
 * cameras and phones record it instead of rotating the pixels. Values: 1 as stored, 2 mirrored,
 * 3 rotated 180, 4 flipped vertically, 5 transposed, 6 rotated 90 clockwise, 7 transversed,
 * 8 rotated 90 counter-clockwise.
 */
public final class Orientation {
    private Orientation() {}

    /** The upright image; orientation 1, and values outside 1..8, return the input itself. */
    public static FloatImage apply(FloatImage in, int orientation) {
        if (orientation < 2 || orientation > 8) return in;
        int w = in.width(), h = in.height(), c = in.channels();
        boolean swap = orientation >= 5;
        FloatImage out = FloatImage.blank(swap ? h : w, swap ? w : h, c, in.bitDepth());
        float[] s = in.data(), d = out.data();
        int ow = out.width(), oh = out.height();
        for (int y = 0; y < oh; y++) {
            for (int x = 0; x < ow; x++) {
                // (sx, sy): the stored pixel shown at (x, y)
                int sx, sy;
                switch (orientation) {
                    case 2 -> { sx = w - 1 - x; sy = y; }
                    case 3 -> { sx = w - 1 - x; sy = h - 1 - y; }
                    case 4 -> { sx = x; sy = h - 1 - y; }
                    case 5 -> { sx = y; sy = x; }
                    case 6 -> { sx = y; sy = h - 1 - x; }
                    case 7 -> { sx = w - 1 - y; sy = h - 1 - x; }
                    default -> { sx = w - 1 - y; sy = x; }
                }
                System.arraycopy(s, (sy * w + sx) * c, d, (y * ow + x) * c, c);
            }
        }
        return out;
    }
}
