package dev.headroom.models;

import dev.headroom.runtime.GraphRunner;
import dev.headroom.runtime.LayerTiledRunner;
import dev.headroom.runtime.Ops;
import dev.headroom.runtime.Tensor;

/**
 * Decodes latents to images and encodes images to latents with a {@link Vae} on one backend.
 * Latents are the diffusion model's: {@code (z - shift) * scaling} of the decoder's input z.
 * Images are (1, H, W, 3) in [0, 1]; the VAE works in [-1, 1].
 *
 * <p>A decode runs whole (every layer on whole tensors, the memory plan's arena) or, given a band
 * height, exactly tiled layer by layer ({@link LayerTiledRunner}): the same image either way.
 */
public final class VaeCodec implements AutoCloseable {
    private final Vae vae;
    private final GraphRunner decoder, encoder;

    public VaeCodec(Vae vae, Ops ops, boolean decode, boolean encode) {
        this.vae = vae;
        var d = vae.detected();
        if (decode && d.decoder() == null) throw new IllegalArgumentException(vae.file() + " has a VAE encoder but no decoder");
        if (encode && d.encoder() == null) throw new IllegalArgumentException(vae.file() + " has a VAE decoder but no encoder");
        this.decoder = decode ? new GraphRunner(d.decoder(), vae.weights(), ops) : null;
        this.encoder = encode ? new GraphRunner(d.encoder(), vae.weights(), ops) : null;
        // GroupNorm statistics come back to the host between layers: nothing to record as one CUDA graph
        if (decoder != null) decoder.record(false);
        if (encoder != null) encoder.record(false);
    }

    public GraphRunner decoder() {
        return decoder;
    }

    /**
     * latent (1, h, w, C) to image (1, h*s, w*s, 3) in [0, 1]; {@code bandRows} 0 runs whole,
     * otherwise exactly tiled in bands of that many output rows.
     */
    public Tensor decode(Tensor latent, int bandRows) {
        int c = vae.config().latent();
        if (latent.c != c) {
            throw new IllegalArgumentException("latent has " + latent.c + " channels but " + vae.file().getFileName() + " is a "
                    + vae.family().label + " VAE with " + c + " latent channels");
        }
        float[] z = latent.toArray();
        for (int i = 0; i < z.length; i++) z[i] = z[i] / vae.scaling() + vae.shift();
        Tensor zt = Tensor.wrap(z, latent.n, latent.h, latent.w, c);
        Tensor x = bandRows > 0 ? new LayerTiledRunner(decoder).run(zt, bandRows) : decoder.run(zt);
        float[] img = x.toArray();
        for (int i = 0; i < img.length; i++) img[i] = Math.clamp((img[i] + 1f) / 2f, 0f, 1f);
        return Tensor.wrap(img, x.n, x.h, x.w, x.c);
    }

    /** The decoder's raw output in [-1, 1] for the decoder's input z (no scaling, no clamp): for goldens. */
    public Tensor decodeRaw(Tensor z, int bandRows) {
        return bandRows > 0 ? new LayerTiledRunner(decoder).run(z, bandRows) : decoder.run(z);
    }

    /** The encoder's moments (mean, then log-variance) for an image in [-1, 1]: for goldens. */
    public Tensor encodeRaw(Tensor x) {
        return encoder.run(x);
    }

    /** Image (1, H, W, 3) in [0, 1] to the latent (1, H/s, W/s, C): the distribution's mean, scaled. */
    public Tensor encode(Tensor image) {
        float[] x = image.toArray();
        for (int i = 0; i < x.length; i++) x[i] = 2f * x[i] - 1f;
        Tensor moments = encoder.run(Tensor.wrap(x, image.n, image.h, image.w, image.c));
        int c = vae.config().latent();
        Tensor latent = Tensor.allocate(moments.n, moments.h, moments.w, c);
        for (int b = 0; b < moments.n; b++)
            for (int y = 0; y < moments.h; y++)
                for (int xx = 0; xx < moments.w; xx++)
                    for (int ch = 0; ch < c; ch++) latent.set(b, y, xx, ch, (moments.get(b, y, xx, ch) - vae.shift()) * vae.scaling());
        return latent;
    }

    @Override
    public void close() {
        if (decoder != null) decoder.close();
        if (encoder != null) encoder.close();
    }
}
