package dev.headroom.runtime.gpu;

import dev.headroom.cuda.Driver;
import dev.headroom.runtime.RowStore;
import dev.headroom.runtime.Tensor;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * CUDA's {@link RowStore}: each band's device bytes copied as they are (fp16 stays fp16) into a
 * pinned host buffer from the session's {@link PinnedPool}, and copied back, rows from several
 * bands into one device tensor, without conversion. Copies wait for the session's stream first
 * (the bands are its work); they are synchronous, so a buffer given back is no longer read.
 */
final class PinnedRows implements RowStore {
    private final Driver cu;
    private final PinnedPool pool;
    private final CudaOps ops;
    private final MemorySegment stream;
    private final int w, c;
    private final List<MemorySegment> bands = new ArrayList<>();
    private final List<int[]> spans = new ArrayList<>();   // {from, rows}

    PinnedRows(Driver cu, PinnedPool pool, CudaOps ops, MemorySegment stream, int w, int c) {
        this.cu = cu;
        this.pool = pool;
        this.ops = ops;
        this.stream = stream;
        this.w = w;
        this.c = c;
    }

    private long rowBytes() {
        return (long) w * c * ops.precision().bytes;
    }

    @Override
    public void put(int from, Tensor band) {
        if (band.n != 1 || band.w != w || band.c != c || !band.dense()) throw new IllegalArgumentException("band " + band + " does not fit dense rows of width " + w + " and " + c + " channels");
        long bytes = band.h * rowBytes();
        MemorySegment host = pool.take(bytes);
        try {
            cu.streamSynchronize(stream);
            cu.copyDtoH(host, band.device.address(), bytes);
        } catch (RuntimeException e) {
            pool.give(host);
            throw e;
        }
        bands.add(host);
        spans.add(new int[] {from, band.h});
    }

    @Override
    public Tensor read(int lo, int hi) {
        Tensor out = ops.allocate(1, hi - lo, w, c);
        try {
            cu.streamSynchronize(stream);   // out may reuse memory that queued work still reads
            int found = 0;
            long rb = rowBytes();
            for (int i = 0; i < bands.size(); i++) {
                int s = spans.get(i)[0], n = spans.get(i)[1];
                int from = Math.max(lo, s), to = Math.min(hi, s + n);
                if (from >= to) continue;
                cu.copyHtoD(out.device.address() + (from - lo) * rb, bands.get(i).asSlice((from - s) * rb), (to - from) * rb);
                found += to - from;
            }
            if (found != hi - lo) throw new IllegalStateException("rows [" + lo + ", " + hi + ") not all stored (" + found + " found)");
            return out;
        } catch (RuntimeException e) {
            ops.release(out);
            throw e;
        }
    }

    @Override
    public void close() {
        for (MemorySegment b : bands) pool.give(b);
        bands.clear();
        spans.clear();
    }
}
