package dev.headroom.runtime.gpu;

import dev.headroom.cuda.Driver;
import dev.headroom.runtime.RowStore;
import dev.headroom.runtime.Tensor;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * CUDA's {@link RowStore}: each band's device bytes copied as they are (fp16 stays fp16) into
 * pinned host memory from the session's {@link PinnedPool}, and copied back, rows from several
 * bands into one device tensor, without conversion.
 *
 * <p>A band's bytes lie in chunks of one size ({@link #CHUNK}) whatever the band's: every level of
 * a decoder (bands of 64 MiB at the latent's resolution, 2 GiB at the image's) then reuses the
 * same pinned chunks, so a run pins about the most it ever holds in host memory at once, instead
 * of that much for each band size. Pinning costs far more than copying.
 *
 * <p>Copies are queued on the session's stream behind the work that made the band, and nothing
 * waits for them: the host never reads these buffers, and every copy into or out of one,
 * including after it goes back to the pool and is taken again, is ordered on that one stream (the
 * pool is the session's, and unpins only after a wait).
 */
final class PinnedRows implements RowStore {
    /** Bytes of one pinned chunk. */
    static final long CHUNK = 64L << 20;

    private final Driver cu;
    private final PinnedPool pool;
    private final CudaOps ops;
    private final MemorySegment stream;
    private final int w, c;
    private final long chunk;
    private final List<List<MemorySegment>> bands = new ArrayList<>();
    private final List<int[]> spans = new ArrayList<>();   // {from, rows}

    PinnedRows(Driver cu, PinnedPool pool, CudaOps ops, MemorySegment stream, int w, int c, long chunk) {
        this.cu = cu;
        this.pool = pool;
        this.ops = ops;
        this.stream = stream;
        this.w = w;
        this.c = c;
        this.chunk = chunk;
    }

    private long rowBytes() {
        return (long) w * c * ops.precision().bytes;
    }

    @Override
    public void put(int from, Tensor band) {
        if (band.n != 1 || band.w != w || band.c != c || !band.dense()) throw new IllegalArgumentException("band " + band + " does not fit dense rows of width " + w + " and " + c + " channels");
        long bytes = band.h * rowBytes();
        List<MemorySegment> chunks = new ArrayList<>();
        try {
            for (long at = 0; at < bytes; at += chunk) {
                MemorySegment host = pool.take(chunk);
                chunks.add(host);
                cu.copyDtoHAsync(host, band.device.address() + at, Math.min(chunk, bytes - at), stream);
            }
        } catch (RuntimeException e) {
            for (MemorySegment s : chunks) pool.give(s);
            throw e;
        }
        bands.add(chunks);
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
                copyIn(bands.get(i), (from - s) * rb, out.device.address() + (from - lo) * rb, (to - from) * rb);
                found += to - from;
            }
            if (found != hi - lo) throw new IllegalStateException("rows [" + lo + ", " + hi + ") not all stored (" + found + " found)");
            return out;
        } catch (RuntimeException e) {
            ops.release(out);
            throw e;
        }
    }

    /** Queues the copy of bytes [at, at + bytes) of a band's chunks to {@code dst} on the device. */
    private void copyIn(List<MemorySegment> chunks, long at, long dst, long bytes) {
        while (bytes > 0) {
            int k = (int) (at / chunk);
            long off = at % chunk, n = Math.min(bytes, chunk - off);
            cu.copyHtoDAsync(dst, chunks.get(k).asSlice(off, n), n, stream);
            at += n;
            dst += n;
            bytes -= n;
        }
    }

    @Override
    public void close() {
        for (List<MemorySegment> b : bands) for (MemorySegment s : b) pool.give(s);
        bands.clear();
        spans.clear();
    }
}
