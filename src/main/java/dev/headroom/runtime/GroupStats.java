package dev.headroom.runtime;

/**
 * GroupNorm statistics as {@link Ops#groupNormStats} gathers them: per (image, group) a count, a
 * sum and a sum of squares, in double, so that the statistics of a whole image can be gathered
 * from any split of its rows (tiles) and give the same mean and variance.
 */
public final class GroupStats {
    private GroupStats() {}

    /** (mean, 1/sqrt(var + eps)) per (image, group) from (count, sum, sum of squares); the variance is the biased one, as PyTorch's. */
    public static float[] meanRstd(double[] acc, float eps) {
        int groups = acc.length / 3;
        float[] out = new float[groups * 2];
        for (int i = 0; i < groups; i++) {
            double n = acc[3 * i], mean = acc[3 * i + 1] / n;
            double var = Math.max(0, acc[3 * i + 2] / n - mean * mean);
            out[2 * i] = (float) mean;
            out[2 * i + 1] = (float) (1.0 / Math.sqrt(var + eps));
        }
        return out;
    }
}
