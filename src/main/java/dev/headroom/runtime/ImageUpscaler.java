package dev.headroom.runtime;

import dev.headroom.core.image.FloatImage;
import dev.headroom.core.image.InputImage;
import dev.headroom.core.image.Resample;
import dev.headroom.core.image.RowSink;

/**
 * Upscales a whole image of any channel layout with an RGB model: gray is repeated into RGB and
 * averaged back; alpha is split off, upscaled on its own with bicubic resampling (an alpha mask
 * has no texture for a photo model to restore), and put back. Rows stream to a {@link RowSink}
 * band by band as the tiles finish them, with the input's channel layout.
 */
public final class ImageUpscaler {
    private final TiledUpscaler tiled;
    private final int modelChannels;

    public ImageUpscaler(TiledUpscaler tiled, int modelChannels) {
        this.tiled = tiled;
        this.modelChannels = modelChannels;
    }

    public int scale() {
        return tiled.scale();
    }

    /** The whole output in host memory. */
    public FloatImage upscale(InputImage in, int tile, int overlap, TiledUpscaler.Progress progress) {
        FloatImage out = FloatImage.blank(in.width() * scale(), in.height() * scale(), in.channels(), in.bitDepth());
        upscale(in, tile, overlap, progress, RowSink.into(out));
        return out;
    }

    /**
     * Whether an image of {@code imageChannels} goes to the tiler as it is, its rows straight to the
     * sink (so they may blend on the device, {@link TiledUpscaler}); gray into an RGB model and
     * alpha images are blended on the host, their colour joined with the resampled alpha.
     */
    public static boolean rowsGoStraightToTheSink(int imageChannels, int modelChannels) {
        return imageChannels == modelChannels && imageChannels != 2 && imageChannels != 4;
    }

    /** Output rows (in's channels, [0, 1]) to {@code sink} top to bottom as they become final. */
    public void upscale(InputImage in, int tile, int overlap, TiledUpscaler.Progress progress, RowSink sink) {
        int c = in.channels();
        boolean alpha = c == 2 || c == 4;
        boolean gray = c <= 2;
        InputImage color = alpha || (gray && modelChannels == 3) ? in.channels(0, gray ? 1 : 3) : in;
        if (gray && modelChannels == 3) color = color.repeatChannel(3);
        if (color.channels() != modelChannels) {
            throw new IllegalArgumentException("model takes " + modelChannels + " channels; cannot feed it a " + c + "-channel image");
        }
        if (!alpha && !(gray && modelChannels == 3)) {
            tiled.upscale(color, tile, overlap, progress, sink);
            return;
        }
        int outW = in.width() * scale(), outH = in.height() * scale();
        Resample.Rows alphaRows = alpha ? new Resample.Rows(in.channels(c - 1, 1).toFloat(), outW, outH) : null;
        int[] next = {0};
        float[][] buffers = new float[2][0];   // this band's output and its alpha, reused
        tiled.upscale(color, tile, overlap, progress, (data, offset, rows) -> {
            int pixels = rows * outW;
            if (buffers[0].length < pixels * c) buffers[0] = new float[pixels * c];
            float[] out = buffers[0];
            int mc = modelChannels;
            if (alpha) {
                if (buffers[1].length < pixels) buffers[1] = new float[pixels];
                alphaRows.rows(next[0], rows, buffers[1]);
            }
            for (int p = 0; p < pixels; p++) {
                int s = offset + p * mc, d = p * c;
                if (gray && mc == 3) out[d] = (data[s] + data[s + 1] + data[s + 2]) / 3f;
                else for (int ch = 0; ch < c - (alpha ? 1 : 0); ch++) out[d + ch] = data[s + ch];
                if (alpha) out[d + c - 1] = buffers[1][p];
            }
            next[0] += rows;
            sink.rows(out, 0, rows);
        });
    }

    public long peakActivationBytes() {
        return tiled.peakActivationBytes();
    }
}
