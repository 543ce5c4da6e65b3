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
     *
     * <p>Input rows resampled across are kept in a ring and reused by the next band (bands overlap
     * by the taps' reach, a quarter of the rows for 64-row bands at x4), and the vertical pass adds
     * whole rows tap by tap; each output value still sums its taps in the same order, in double, as
     * {@link #bicubic} does, so the floats are the same bit for bit (issue 19: this resample was most
     * of an RGBA job's host time).
     */
    public static final class Rows {
        /** Values in a band from which its vertical pass runs on several cores (the property is for benchmarks: a huge value keeps it on one). */
        static final long PARALLEL_VALUES = Long.getLong("headroom.resample.parallel-values", 1 << 18);
        private final InputImage in;
        private final int outW, outH, c;
        private final Taps down;
        /** The horizontal taps flattened: output x reads input sample xAt[x * xTaps + t] with xWeight[x * xTaps + t]. */
        private final int[] xAt;
        private final double[] xWeight;
        private final int xTaps;
        private float[] line = new float[0];
        /** Input rows resampled across: row y in ring[y % ring.length], valid for rows [cachedLo, cachedHi]. */
        private float[][] ring = new float[0][];
        private int cachedLo = 0, cachedHi = -1;
        /** Each thread's sums for one output row of the vertical pass. */
        private final ThreadLocal<double[]> sums = ThreadLocal.withInitial(() -> new double[0]);

        public Rows(InputImage in, int outW, int outH) {
            this.in = in;
            this.outW = outW;
            this.outH = outH;
            this.c = in.channels();
            Taps across = Taps.of(in.width(), outW);
            this.down = Taps.of(in.height(), outH);
            this.xTaps = across.weights()[0].length;
            this.xAt = new int[outW * xTaps];
            this.xWeight = new double[outW * xTaps];
            for (int x = 0; x < outW; x++)
                for (int t = 0; t < xTaps; t++) {
                    xAt[x * xTaps + t] = across.at(x, t) * c;
                    xWeight[x * xTaps + t] = across.weights()[x][t];
                }
        }

        /** Output rows [y0, y0 + n) into dst, (n, outW, channels) from index 0; bands must not go back up past rows released. */
        public void rows(int y0, int n, float[] dst) {
            if (y0 < 0 || n < 0 || y0 + n > outH) throw new IllegalArgumentException("rows " + y0 + "+" + n + " of " + outH);
            if (n == 0) return;
            int taps = down.weights()[0].length, rowLen = outW * c;
            int lo = down.at(y0, 0), hi = down.at(y0 + n - 1, taps - 1);
            if (hi - lo + 1 > ring.length) {   // a taller band than before: a bigger ring, nothing kept
                ring = new float[hi - lo + 1][rowLen];
                cachedLo = lo;
                cachedHi = lo - 1;
            } else if (lo < cachedLo || lo > cachedHi + 1) {   // not contiguous with the rows kept
                cachedLo = lo;
                cachedHi = lo - 1;
            }
            // rows [lo, cachedHi] are kept; the new ones overwrite only slots of rows above lo (the ring holds hi - lo + 1)
            for (int y = cachedHi + 1; y <= hi; y++) across(y, ring[y % ring.length]);
            cachedHi = Math.max(cachedHi, hi);
            cachedLo = Math.max(cachedLo, cachedHi - ring.length + 1);
            // vertical pass: each output row adds its input rows tap by tap (per value the order of bicubic's
            // loop), rows on several cores when the band is big (each row's floats are the same either way)
            java.util.stream.IntStream band = java.util.stream.IntStream.range(y0, y0 + n);
            (n > 1 && (long) n * rowLen >= PARALLEL_VALUES ? band.parallel() : band).forEach(y -> down(y, dst, (y - y0) * rowLen, rowLen));
            in.release(lo);   // later bands start no higher
        }

        /** Output row y into dst from d: its input rows (resampled across, in the ring) weighted and added tap by tap. */
        private void down(int y, float[] dst, int d, int rowLen) {
            double[] sum = sums.get();
            if (sum.length < rowLen) sums.set(sum = new double[rowLen]);
            java.util.Arrays.fill(sum, 0, rowLen, 0.0);
            double[] wy = down.weights()[y];
            for (int t = 0; t < wy.length; t++) {
                double w = wy[t];
                if (w == 0) continue;
                float[] src = ring[down.at(y, t) % ring.length];
                for (int i = 0; i < rowLen; i++) sum[i] += w * src[i];
            }
            for (int i = 0; i < rowLen; i++) dst[d + i] = (float) sum[i];
        }

        /** Input row y resampled across into out (outW, channels). */
        private void across(int y, float[] out) {
            int w = in.width();
            if (line.length < w * c) line = new float[w * c];
            float[] src = line;
            in.floats(y, 0, w, src, 0);
            int[] at = xAt;
            double[] wx = xWeight;
            for (int x = 0; x < outW; x++) {
                int k = x * xTaps;
                for (int ch = 0; ch < c; ch++) {
                    double a = 0;
                    for (int t = 0; t < xTaps; t++) {
                        double wgt = wx[k + t];
                        if (wgt == 0) continue;
                        a += wgt * src[at[k + t] + ch];
                    }
                    out[x * c + ch] = (float) a;
                }
            }
        }
    }
}
