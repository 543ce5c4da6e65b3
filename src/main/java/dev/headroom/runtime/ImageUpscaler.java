package dev.headroom.runtime;

import dev.headroom.core.image.FloatImage;
import dev.headroom.core.image.InputImage;
import dev.headroom.core.image.RowSink;

/**
 * Upscales a whole image of any channel layout with an RGB model: gray is repeated into RGB and
 * averaged back; alpha is split off, upscaled on its own with bicubic resampling (an alpha mask
 * has no texture for a photo model to restore), and put back ({@link JoinedRows}). Rows stream to
 * a {@link RowSink} band by band as the tiles finish them, with the input's channel layout; the
 * alpha is read a few rows at a time too, and where the tiles blend on the device the colour
 * comes home as samples (made gray there) whatever the layout.
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
     * Whether an image of {@code imageChannels} can go through a model of {@code modelChannels}, and
     * so blend on the device where the backend can ({@link TiledUpscaler}): its colour channels
     * are the model's, or it is gray and the model RGB. Gray into an RGB model and alpha images go
     * through {@link JoinedRows}, which makes them gray and puts the alpha back, either way.
     */
    public static boolean mayBlendOnTheDevice(int imageChannels, int modelChannels) {
        int color = imageChannels == 2 || imageChannels == 4 ? imageChannels - 1 : imageChannels;
        return color == modelChannels || color == 1 && modelChannels == 3;
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
        JoinedRows joined = new JoinedRows(in, modelChannels, scale(), sink);
        tiled.upscale(color, tile, overlap, progress, joined, joined.gray());
    }

    public long peakActivationBytes() {
        return tiled.peakActivationBytes();
    }
}
