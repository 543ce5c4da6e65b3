package dev.headroom.runtime;

/**
 * A {@link RowStore} that keeps the rows on the device, in one arena of the whole (1, H, w, c)
 * tensor: a band is copied into its rows (on the device, queued like any op), and rows are read
 * as a view of the arena, without a copy. Views of an arena own nothing ({@link ArenaView}), so a
 * reader's release leaves them alone. An exact tiled run keeps an intermediate here when the
 * budget leaves room for it, and in host memory otherwise ({@link Ops#rowStore}).
 */
final class DeviceRows implements RowStore {
    private final Ops ops;
    private final DeviceBuffer arena;
    private final int h, w, c;
    private final long rowBytes;

    DeviceRows(Ops ops, int h, int w, int c) {
        this.ops = ops;
        this.h = h;
        this.w = w;
        this.c = c;
        this.rowBytes = (long) w * c * ops.memoryModel().elementBytes();
        this.arena = ops.allocateArena(h * rowBytes);
    }

    /** Device bytes rows of this shape hold on {@code ops}. */
    static long bytes(Ops ops, int h, int w, int c) {
        return (long) h * w * c * ops.memoryModel().elementBytes();
    }

    @Override
    public void put(int from, Tensor band) {
        if (band.n != 1 || band.w != w || band.c != c || from < 0 || from + band.h > h) {
            throw new IllegalArgumentException("band " + band + " at row " + from + " does not fit rows (" + h + ", " + w + ", " + c + ")");
        }
        ops.copy(band, view(from, from + band.h));
    }

    @Override
    public Tensor read(int lo, int hi) {
        return view(lo, hi);
    }

    private Tensor view(int lo, int hi) {
        return ops.view(arena, lo * rowBytes, 1, hi - lo, w, c);
    }

    @Override
    public void close() {
        ops.releaseArena(arena);
    }
}
