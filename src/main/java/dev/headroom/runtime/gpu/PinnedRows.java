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
 * bands into one device tensor, without conversion. Copies are queued on the session's stream
 * behind the work that made the band, and nothing waits for them: the host never reads these
 * buffers, and every copy into or out of one, including after it goes back to the pool and is
 * taken again, is ordered on that one stream (the pool is the session's, closed after a wait).
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
            cu.copyDtoHAsync(host, band.device.address(), bytes, stream);
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
            int found = 0;
            long rb = rowBytes();
            for (int i = 0; i < bands.size(); i++) {
                int s = spans.get(i)[0], n = spans.get(i)[1];
                int from = Math.max(lo, s), to = Math.min(hi, s + n);
                if (from >= to) continue;
                cu.copyHtoDAsync(out.device.address() + (from - lo) * rb, bands.get(i).asSlice((from - s) * rb), (to - from) * rb, stream);
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
