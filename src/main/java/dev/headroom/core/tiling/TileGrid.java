package dev.headroom.core.tiling;

import java.util.ArrayList;
import java.util.List;

/**
 * Cuts an image into overlapping tiles and gives each output pixel of each tile a blend weight.
 *
 * <p>Along one axis of {@code size} input pixels, {@code tile} is the longest a tile may be. The
 * axis gets the fewest tiles of that length that cover it with at least {@code overlap} shared
 * pixels between neighbours, and then the tiles are shrunk to the shortest equal length that still
 * does: 451 pixels in tiles of up to 256 become two tiles of 234, not two of 256 (which would
 * compute 13% more than needed, and far more on small images). All tiles of an axis have one
 * length (one shape, one plan), but for a model with a modulus, where the last may be a few pixels
 * shorter and runs padded to the same shape.
 *
 * <p>Weights: inside a region shared with a neighbour the weight ramps linearly towards that
 * neighbour's side, elsewhere it is 1; then, at every output position, the weights of the tiles
 * covering it are divided by their sum. Each axis thus sums to exactly one at every position,
 * and because the tiles form a grid, the 2-D weight {@code wx * wy} of the tiles covering a pixel
 * sums to one as well: there are no seams and no accumulator of weights. A single tile gets
 * weight 1 everywhere, so one tile over the whole image gives the untiled result bit for bit.
 */
public final class TileGrid {
    private TileGrid() {}

    /** The spans along an axis of {@code size} input pixels for output scale {@code scale}. */
    public static List<AxisSpan> axis(int size, int tile, int overlap, int scale) {
        return axis(size, tile, overlap, scale, 1);
    }

    /**
     * As {@link #axis(int, int, int, int)} for a model whose input must be a multiple of
     * {@code modulus} (a pixel unshuffle; see {@link #padded}): tiles start at multiples of it and
     * are a multiple of it long (at most {@code tile} rounded down to one), so every tile sees the
     * unshuffle's grid where the whole image would, as Real-ESRGAN's tiles do. The axis is laid out
     * as if {@link #padded} to the modulus; the last tile then ends at the image's edge, up to
     * {@code modulus - 1} pixels short, and runs padded to the others' length. The overlap is kept
     * in whole multiples of the modulus (rounded up, at most one step less than the tile).
     */
    public static List<AxisSpan> axis(int size, int tile, int overlap, int scale, int modulus) {
        if (size < 1) throw new IllegalArgumentException("image axis of " + size + " pixels");
        if (tile < 1) throw new IllegalArgumentException("tile of " + tile + " pixels; use at least 1");
        if (overlap < 0 || overlap >= tile) {
            throw new IllegalArgumentException("overlap " + overlap + " must be at least 0 and less than the tile (" + tile + ")");
        }
        if (modulus < 1) throw new IllegalArgumentException("modulus " + modulus);
        // in units of the modulus (pixels when it is 1)
        int units = Math.ceilDiv(size, modulus), unitTile = Math.max(1, tile / modulus);
        int unitOverlap = Math.min(Math.ceilDiv(overlap, modulus), unitTile - 1);
        List<int[]> extents = new ArrayList<>();
        if (size <= tile || units <= unitTile) {   // one tile, padded to the modulus when it runs
            extents.add(new int[] {0, size});
        } else {
            int count = (int) Math.ceil((double) (units - unitOverlap) / (unitTile - unitOverlap));
            int len = (int) Math.ceil((double) (units + (count - 1) * unitOverlap) / count);
            // starts spread evenly from 0 to units - len; neighbours then share at least `overlap`
            for (int i = 0; i < count; i++) {
                int start = (int) Math.round((double) i * (units - len) / (count - 1)) * modulus;
                extents.add(new int[] {start, Math.min(len * modulus, size - start)});
            }
        }
        int n = extents.size();
        float[][] raw = new float[n][];
        for (int i = 0; i < n; i++) {
            int start = extents.get(i)[0], len = extents.get(i)[1];
            int prevEnd = i > 0 ? extents.get(i - 1)[0] + extents.get(i - 1)[1] : start;
            int nextStart = i + 1 < n ? extents.get(i + 1)[0] : start + len;
            // shared regions in output pixels
            double left = (double) (prevEnd - start) * scale;
            double right = (double) (start + len - nextStart) * scale;
            float[] w = new float[len * scale];
            for (int p = 0; p < w.length; p++) {
                double v = 1;
                if (left > 0) v = Math.min(v, (p + 0.5) / left);
                if (right > 0) v = Math.min(v, (w.length - p - 0.5) / right);
                w[p] = (float) v;
            }
            raw[i] = w;
        }
        // normalise so the tiles covering each output position sum to one
        double[] sum = new double[size * scale];
        for (int i = 0; i < n; i++) {
            int o = extents.get(i)[0] * scale;
            for (int p = 0; p < raw[i].length; p++) sum[o + p] += raw[i][p];
        }
        List<AxisSpan> spans = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            int o = extents.get(i)[0] * scale;
            float[] w = raw[i];
            for (int p = 0; p < w.length; p++) w[p] = (float) (w[p] / sum[o + p]);
            spans.add(new AxisSpan(extents.get(i)[0], extents.get(i)[1], w));
        }
        return spans;
    }

    /**
     * The length a tile of {@code length} input pixels runs at for a model whose input must be a
     * multiple of {@code modulus} (see {@code Graph.modulus}): rounded up. The extra pixels are the
     * image's own beyond the tile where there are any, else the image reflected at its edge (as
     * Real-ESRGAN pads), and their output is cropped away.
     */
    public static int padded(int length, int modulus) {
        if (modulus < 1) throw new IllegalArgumentException("modulus " + modulus);
        return Math.ceilDiv(length, modulus) * modulus;
    }

    /** Number of tiles for a width x height image. */
    public static int count(int width, int height, int tile, int overlap) {
        return count(width, height, tile, overlap, 1);
    }

    /** Number of tiles for a width x height image and a model of that {@code modulus}. */
    public static int count(int width, int height, int tile, int overlap, int modulus) {
        return axis(width, tile, overlap, 1, modulus).size() * axis(height, tile, overlap, 1, modulus).size();
    }
}
