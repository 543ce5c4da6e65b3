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
 * length (one shape, one plan).
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
        if (size < 1) throw new IllegalArgumentException("image axis of " + size + " pixels");
        if (tile < 1) throw new IllegalArgumentException("tile of " + tile + " pixels; use at least 1");
        if (overlap < 0 || overlap >= tile) {
            throw new IllegalArgumentException("overlap " + overlap + " must be at least 0 and less than the tile (" + tile + ")");
        }
        List<int[]> extents = new ArrayList<>();
        if (size <= tile) {
            extents.add(new int[] {0, size});
        } else {
            int count = (int) Math.ceil((double) (size - overlap) / (tile - overlap));
            int len = (int) Math.ceil((double) (size + (count - 1) * overlap) / count);
            // starts spread evenly from 0 to size - len; neighbours then share at least `overlap`
            for (int i = 0; i < count; i++) {
                int start = (int) Math.round((double) i * (size - len) / (count - 1));
                extents.add(new int[] {start, len});
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

    /** Number of tiles for a width x height image. */
    public static int count(int width, int height, int tile, int overlap) {
        return axis(width, tile, overlap, 1).size() * axis(height, tile, overlap, 1).size();
    }
}
