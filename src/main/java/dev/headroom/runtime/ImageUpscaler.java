package dev.headroom.runtime;

import dev.headroom.core.image.FloatImage;
import dev.headroom.core.image.Resample;

/**
 * Upscales a whole image of any channel layout with an RGB model: gray is repeated into RGB and
 * averaged back; alpha is split off, upscaled on its own with bicubic resampling (an alpha mask
 * has no texture for a photo model to restore), and put back.
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

    public FloatImage upscale(FloatImage in, int tile, int overlap, TiledUpscaler.Progress progress) {
        int c = in.channels();
        boolean alpha = c == 2 || c == 4;
        boolean gray = c <= 2;
        FloatImage color = in.channels(0, gray ? 1 : 3);
        if (gray && modelChannels == 3) color = color.repeatChannel(3);
        if (color.channels() != modelChannels) {
            throw new IllegalArgumentException("model takes " + modelChannels + " channels; cannot feed it a " + c + "-channel image");
        }
        FloatImage up = tiled.upscale(color, tile, overlap, progress);
        if (gray && modelChannels == 3) up = meanOfChannels(up);
        if (!alpha) return up;
        FloatImage a = Resample.bicubic(in.channels(c - 1, 1), up.width(), up.height());
        return FloatImage.stack(up, a);
    }

    private static FloatImage meanOfChannels(FloatImage rgb) {
        FloatImage g = FloatImage.blank(rgb.width(), rgb.height(), 1, rgb.bitDepth());
        float[] s = rgb.data(), d = g.data();
        for (int p = 0; p < d.length; p++) d[p] = (s[3 * p] + s[3 * p + 1] + s[3 * p + 2]) / 3f;
        return g;
    }

    public long peakActivationBytes() {
        return tiled.peakActivationBytes();
    }
}
