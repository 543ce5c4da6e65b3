package dev.headroom.runtime;

import java.util.ArrayList;
import java.util.List;

/**
 * Rows kept as host float arrays, one per band as it was made: no one array holds the tensor, so
 * an image may have more than 2^31 values (4096x4096 x 128 channels). Rows that one band holds
 * are read as a view; rows across bands are copied into one tensor. Any backend can use it
 * (through its upload and download); it is the CPU's {@link RowStore}.
 */
final class HostRows implements RowStore {
    private final Ops ops;
    private final int w, c;
    private final List<Tensor> bands = new ArrayList<>();
    private final List<Integer> starts = new ArrayList<>();

    HostRows(Ops ops, int w, int c) {
        this.ops = ops;
        this.w = w;
        this.c = c;
    }

    @Override
    public void put(int from, Tensor band) {
        if (band.n != 1 || band.w != w || band.c != c) throw new IllegalArgumentException("band " + band + " does not fit rows of width " + w + " and " + c + " channels");
        bands.add(ops.download(band));
        starts.add(from);
    }

    @Override
    public Tensor read(int lo, int hi) {
        return ops.upload(host(lo, hi));
    }

    private Tensor host(int lo, int hi) {
        for (int i = 0; i < bands.size(); i++) {
            int s = starts.get(i);
            Tensor b = bands.get(i);
            if (lo >= s && hi <= s + b.h) return b.rows(lo - s, hi - s);
        }
        Tensor out = Tensor.allocate(1, hi - lo, w, c);
        int found = 0;
        for (int i = 0; i < bands.size(); i++) {
            int s = starts.get(i);
            Tensor b = bands.get(i);
            for (int y = Math.max(lo, s); y < Math.min(hi, s + b.h); y++, found++) {
                for (int x = 0; x < w; x++) System.arraycopy(b.data, b.index(0, y - s, x), out.data, out.index(0, y - lo, x), c);
            }
        }
        if (found != hi - lo) throw new IllegalStateException("rows [" + lo + ", " + hi + ") not all stored (" + found + " found)");
        return out;
    }

    @Override
    public void close() {
        bands.clear();
        starts.clear();
    }
}
