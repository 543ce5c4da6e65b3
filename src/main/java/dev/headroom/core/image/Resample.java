package dev.headroom.core.image;

/**
 * Separable cubic resampling (Keys kernel, a = -0.5, as PIL and torch's bicubic with antialias use),
 * sampling at pixel centres. When shrinking, the kernel is stretched by the factor, so downscaling
 * is antialiased; when enlarging it is plain bicubic interpolation. Borders clamp.
 */
public final class Resample {
    private Resample() {}

    static double cubic(double x) {
        double a = -0.5;
        x = Math.abs(x);
        if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
        if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
        return 0;
    }

    public static FloatImage bicubic(FloatImage in, int outW, int outH) {
        float[] tmp = axis(in.data(), in.width(), in.height(), in.channels(), outW, true);
        float[] out = axis(tmp, outW, in.height(), in.channels(), outH, false);
        return new FloatImage(outW, outH, in.channels(), out, in.bitDepth());
    }

    /** Resamples along x (horizontal = true) or y. */
    private static float[] axis(float[] src, int w, int h, int c, int outLen, boolean horizontal) {
        int inLen = horizontal ? w : h;
        double scale = (double) inLen / outLen;
        double support = 2 * Math.max(scale, 1);
        double stretch = Math.max(scale, 1);
        int ow = horizontal ? outLen : w, oh = horizontal ? h : outLen;
        float[] dst = new float[ow * oh * c];
        int taps = (int) Math.ceil(support) * 2 + 1;
        int[] first = new int[outLen];
        double[][] weights = new double[outLen][taps];
        for (int o = 0; o < outLen; o++) {
            double centre = (o + 0.5) * scale;
            int lo = (int) Math.floor(centre - support);
            first[o] = lo;
            double sum = 0;
            for (int t = 0; t < taps; t++) {
                double wgt = cubic((lo + t + 0.5 - centre) / stretch);
                weights[o][t] = wgt;
                sum += wgt;
            }
            for (int t = 0; t < taps; t++) weights[o][t] /= sum;
        }
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                int o = horizontal ? x : y;
                for (int ch = 0; ch < c; ch++) {
                    double acc = 0;
                    for (int t = 0; t < taps; t++) {
                        double wgt = weights[o][t];
                        if (wgt == 0) continue;
                        int s = Math.clamp(first[o] + t, 0, inLen - 1);
                        int idx = horizontal ? (y * w + s) * c + ch : (s * w + x) * c + ch;
                        acc += wgt * src[idx];
                    }
                    dst[(y * ow + x) * c + ch] = (float) acc;
                }
            }
        return dst;
    }
}
