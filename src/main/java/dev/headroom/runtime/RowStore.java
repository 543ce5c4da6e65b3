package dev.headroom.runtime;

/**
 * A whole single-image tensor kept off the device as bands of rows, for an exact tiled run
 * ({@link LayerTiledRunner}) whose intermediates do not fit the device. Bands arrive top to bottom
 * without gaps; any rows can be read back as one device tensor. Each backend keeps them its own
 * way ({@link Ops#rowStore}): the CPU as float arrays, CUDA as the device's bytes in pinned host
 * memory (no conversion, copies at full bus speed).
 */
public interface RowStore extends AutoCloseable {
    /** Copies {@code band} (a (1, rows, w, c) tensor of this backend) in as rows [from, from + rows). */
    void put(int from, Tensor band);

    /**
     * Rows [lo, hi) as a (1, hi - lo, w, c) tensor of this backend; the caller releases it when it
     * has a device buffer ({@code t.device != null}); a host view owns nothing.
     */
    Tensor read(int lo, int hi);

    /** Frees what the rows hold. */
    @Override
    void close();
}
