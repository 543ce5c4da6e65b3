package dev.headroom.runtime;

import dev.headroom.core.graph.Op;

/**
 * {@link Ops.NormStats} in host arrays: count, sum and sum of squares per (image, group) in
 * double, filled by the backend's {@link Ops#groupNormStats}, turned into (mean, rstd) once before
 * the first {@link #apply} after an {@link #add}. The CPU's way; any backend can use it.
 */
final class HostNormStats implements Ops.NormStats {
    private final Ops ops;
    private final Op.GroupNorm op;
    private final double[] acc;
    private float[] meanRstd;

    HostNormStats(Ops ops, Op.GroupNorm op, int images) {
        this.ops = ops;
        this.op = op;
        this.acc = new double[images * op.groups() * 3];
    }

    @Override
    public void add(Tensor band) {
        ops.groupNormStats(band, op.groups(), acc);
        meanRstd = null;
    }

    @Override
    public void apply(Tensor in, float[] gamma, float[] beta, Tensor out) {
        if (meanRstd == null) meanRstd = GroupStats.meanRstd(acc, op.eps());
        ops.groupNormApply(in, op, meanRstd, gamma, beta, out);
    }

    @Override
    public void close() {}
}
