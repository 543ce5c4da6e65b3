package dev.headroom.runtime;

import dev.headroom.core.image.FloatImage;
import dev.headroom.core.tiling.AxisSpan;
import dev.headroom.core.tiling.TileGrid;
import java.util.List;

/**
 * Runs a model over an image tile by tile and blends the tiles into a full-size output in host
 * memory (see {@link TileGrid} for the layout and the weights). Each tile is cut from the input,
 * scaled to the model's value range, run, scaled back, and added into the output with its
 * weights; only one tile's activations are alive at a time.
 */
public final class TiledUpscaler {

    /** Told after every tile. */
    public interface Progress {
        void tileDone(int done, int total);
    }

    private final GraphRunner runner;
    private final float valueRange;

    /** @param valueRange the model's input and output are in [0, valueRange] (1 or 255) */
    public TiledUpscaler(GraphRunner runner, float valueRange) {
        this.runner = runner;
        this.valueRange = valueRange;
    }

    public int scale() {
        return runner.graph().scale();
    }

    /** in has the model's input channel count; tile and overlap are in input pixels. */
    public FloatImage upscale(FloatImage in, int tile, int overlap, Progress progress) {
        int c = runner.graph().inputChannels();
        int oc = runner.graph().outputChannels();
        if (in.channels() != c) throw new IllegalArgumentException("model takes " + c + " channels, image has " + in.channels());
        int r = scale();
        List<AxisSpan> xs = TileGrid.axis(in.width(), tile, overlap, r);
        List<AxisSpan> ys = TileGrid.axis(in.height(), tile, overlap, r);
        FloatImage out = FloatImage.blank(in.width() * r, in.height() * r, oc, in.bitDepth());
        int total = xs.size() * ys.size(), done = 0;
        for (AxisSpan sy : ys) {
            for (AxisSpan sx : xs) {
                Tensor t = cut(in, sx, sy, c);
                Tensor y = runner.run(t);
                blend(y, sx, sy, r, out);
                if (progress != null) progress.tileDone(++done, total);
            }
        }
        return out;
    }

    private Tensor cut(FloatImage in, AxisSpan sx, AxisSpan sy, int c) {
        Tensor t = Tensor.allocate(1, sy.length(), sx.length(), c);
        float k = valueRange;
        for (int y = 0; y < sy.length(); y++) {
            int src = ((sy.start() + y) * in.width() + sx.start()) * c;
            int dst = y * sx.length() * c;
            for (int i = 0; i < sx.length() * c; i++) t.data[dst + i] = in.data()[src + i] * k;
        }
        return t;
    }

    private void blend(Tensor y, AxisSpan sx, AxisSpan sy, int r, FloatImage out) {
        int oc = out.channels();
        if (y.h != sy.length() * r || y.w != sx.length() * r || y.c != oc) {
            throw new IllegalStateException("model gave " + y.shape() + " for a " + sx.length() + "x" + sy.length() + " tile at scale " + r);
        }
        float inv = 1f / valueRange;
        float[] o = out.data();
        for (int py = 0; py < y.h; py++) {
            float wy = sy.weight(py);
            int row = (sy.start() * r + py) * out.width();
            for (int px = 0; px < y.w; px++) {
                float wgt = wy * sx.weight(px);
                int dst = (row + sx.start() * r + px) * oc;
                int src = y.index(0, py, px);
                // the output starts at zero and 0 + 1 * v == v, so a lone tile is copied exactly
                for (int ch = 0; ch < oc; ch++) o[dst + ch] += wgt * (y.data[src + ch] * inv);
            }
        }
    }

    public long peakActivationBytes() {
        return runner.peakBytes();
    }
}
