package dev.headroom.core.image;

/**
 * Separable cubic resampling (Keys kernel, a = -0.5, as PIL and torch's bicubic with antialias use),
 * sampling at pixel centres. When shrinking, the kernel is stretched by the factor, so downscaling
 * is antialiased; when enlarging it is plain bicubic interpolation. Borders clamp.
 *
 * <p>{@link Rows} gives the output a band of rows at a time (horizontal pass on the input rows
 * the band needs, then the vertical pass, in the same order of operations as {@link #bicubic}, so
 * both give the same floats), so a streamed output never holds the whole resampled image, nor a
 * streamed input the whole source.
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

    /** The whole image at once (the reference {@link Rows} is tested against). */
    public static FloatImage bicubic(FloatImage in, int outW, int outH) {
        float[] tmp = axis(in.data(), in.width(), in.height(), in.channels(), outW, true);
        float[] out = axis(tmp, outW, in.height(), in.channels(), outH, false);
        return new FloatImage(outW, outH, in.channels(), out, in.bitDepth());
    }

    /** Resamples along x (horizontal = true) or y. */
    private static float[] axis(float[] src, int w, int h, int c, int outLen, boolean horizontal) {
        int inLen = horizontal ? w : h;
        int ow = horizontal ? outLen : w, oh = horizontal ? h : outLen;
        float[] dst = new float[ow * oh * c];
        Taps k = Taps.of(inLen, outLen);
        int[] first = k.first();
        double[][] weights = k.weights();
        int taps = weights[0].length;
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

    /** The taps of one axis: output o reads input positions first[o] + t (clamped) with weights[o][t]. */
    private record Taps(int[] first, double[][] weights, int inLen) {
        static Taps of(int inLen, int outLen) {
            double scale = (double) inLen / outLen;
            double support = 2 * Math.max(scale, 1);
            double stretch = Math.max(scale, 1);
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
            return new Taps(first, weights, inLen);
        }

        int at(int o, int t) {
            return Math.clamp(first[o] + t, 0, inLen - 1);
        }
    }

    /**
     * An image resampled to outW x outH, produced a band of output rows at a time, top to bottom:
     * each band reads the input rows its taps reach ({@link InputImage#floats}, one row at a time)
     * and releases those above them, so a streamed input is held a few rows deep, not whole.
     */
    public static final class Rows {
        private final InputImage in;
        private final int outW, outH;
        private final Taps across, down;
        private float[] line = new float[0], tmp = new float[0];

        public Rows(InputImage in, int outW, int outH) {
            this.in = in;
            this.outW = outW;
            this.outH = outH;
            this.across = Taps.of(in.width(), outW);
            this.down = Taps.of(in.height(), outH);
        }

        /** Output rows [y0, y0 + n) into dst, (n, outW, channels) from index 0; bands must not go back up past rows released. */
        public void rows(int y0, int n, float[] dst) {
            if (y0 < 0 || n < 0 || y0 + n > outH) throw new IllegalArgumentException("rows " + y0 + "+" + n + " of " + outH);
            if (n == 0) return;
            int c = in.channels(), taps = down.weights()[0].length;
            int lo = down.at(y0, 0), hi = down.at(y0 + n - 1, taps - 1);
            // horizontal pass over the input rows the band reads
            int w = in.width();
            if (line.length < w * c) line = new float[w * c];
            if (tmp.length < (hi - lo + 1) * outW * c) tmp = new float[(hi - lo + 1) * outW * c];
            float[] src = line;
            for (int y = lo; y <= hi; y++) {
                in.floats(y, 0, w, src, 0);
                for (int x = 0; x < outW; x++)
                    for (int ch = 0; ch < c; ch++) {
                        double acc = 0;
                        double[] wx = across.weights()[x];
                        for (int t = 0; t < wx.length; t++) {
                            if (wx[t] == 0) continue;
                            acc += wx[t] * src[across.at(x, t) * c + ch];
                        }
                        tmp[((y - lo) * outW + x) * c + ch] = (float) acc;
                    }
            }
            // vertical pass
            for (int y = y0; y < y0 + n; y++) {
                double[] wy = down.weights()[y];
                for (int x = 0; x < outW; x++)
                    for (int ch = 0; ch < c; ch++) {
                        double acc = 0;
                        for (int t = 0; t < wy.length; t++) {
                            if (wy[t] == 0) continue;
                            acc += wy[t] * tmp[((down.at(y, t) - lo) * outW + x) * c + ch];
                        }
                        dst[((y - y0) * outW + x) * c + ch] = (float) acc;
                    }
            }
            in.release(lo);   // later bands start no higher
        }
    }
}
