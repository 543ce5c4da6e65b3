package dev.headroom.core.image;

/** Image quality figures as super-resolution papers compute them. */
public final class Quality {
    private Quality() {}

    /** BT.601 luma (studio range, 16..235 for 8-bit) of an RGB pixel in [0, 1], in [0, 1]. */
    public static double luma601(double r, double g, double b) {
        return (16.0 + 65.481 * r + 128.553 * g + 24.966 * b) / 255.0;
    }

    /**
     * PSNR in dB over the Y channel of two RGB images of the same size, both first quantised to
     * 8 bits as saved images are, with {@code border} pixels cropped on every side.
     */
    public static double psnrY(FloatImage a, FloatImage b, int border) {
        if (a.width() != b.width() || a.height() != b.height()) {
            throw new IllegalArgumentException("PSNR of " + a.width() + "x" + a.height() + " against " + b.width() + "x" + b.height());
        }
        double se = 0;
        long n = 0;
        for (int y = border; y < a.height() - border; y++)
            for (int x = border; x < a.width() - border; x++) {
                double ya = luma601(q(a.get(x, y, 0)), q(a.get(x, y, 1)), q(a.get(x, y, 2)));
                double yb = luma601(q(b.get(x, y, 0)), q(b.get(x, y, 1)), q(b.get(x, y, 2)));
                se += (ya - yb) * (ya - yb);
                n++;
            }
        return 10 * Math.log10(1.0 / (se / n));
    }

    /** PSNR in dB over all channels, on values in [0, 1]. */
    public static double psnr(FloatImage a, FloatImage b) {
        double se = 0;
        for (int i = 0; i < a.data().length; i++) {
            double d = a.data()[i] - b.data()[i];
            se += d * d;
        }
        return 10 * Math.log10(1.0 / (se / a.data().length));
    }

    private static double q(float v) {
        return Math.round(Math.clamp(v, 0f, 1f) * 255f) / 255.0;
    }
}
