package dev.headroom.models;

import dev.headroom.core.plan.LayerBands;
import dev.headroom.runtime.GraphRunner;
import dev.headroom.runtime.memory.DeviceOutOfMemory;
import dev.headroom.runtime.LayerTiledRunner;
import dev.headroom.runtime.Ops;
import dev.headroom.runtime.Tensor;

/**
 * Decodes latents to images and encodes images to latents with a {@link Vae} on one backend.
 * Latents are the diffusion model's: {@code (z - shift) * scaling} of the decoder's input z.
 * Images are (1, H, W, 3) in [0, 1]; the VAE works in [-1, 1].
 *
 * <p>A decode runs whole (every layer on whole tensors, the memory plan's arena) or, given a band
 * height, exactly tiled layer by layer ({@link LayerTiledRunner}): the same image either way. So
 * when the device runs out of memory after the allocator's own rungs (flush, retry), the decode
 * shrinks and tries again, losing nothing: whole becomes bands of half the output height, bands
 * halve, down to {@link LayerBands#MIN_ROWS} rows; only then the typed error stands.
 *
 * <p>A tiled decode keeps its intermediates on the device as far as the budget leaves room beside
 * the weights and the largest band's step ({@link LayerBands#peak}), and the rest in host memory;
 * after running out of memory, all of them in host memory. A whole decode waits for nothing
 * between layers (GroupNorm's statistics stay on the device), so once a shape repeats it is
 * recorded as one CUDA graph where replaying is faster ({@link GraphRunner#record}).
 */
public final class VaeCodec implements AutoCloseable {
    private final Vae vae;
    private final GraphRunner decoder, encoder;
    /** Whether {@link #close} closes the runners (false for a decoder the caller owns). */
    private final boolean owns;

    public VaeCodec(Vae vae, Ops ops, boolean decode, boolean encode) {
        this.vae = vae;
        var d = vae.detected();
        if (decode && d.decoder() == null) throw new IllegalArgumentException(vae.file() + " has a VAE encoder but no decoder");
        if (encode && d.encoder() == null) throw new IllegalArgumentException(vae.file() + " has a VAE decoder but no encoder");
        this.decoder = decode ? new GraphRunner(d.decoder(), vae.weights(), ops) : null;
        this.encoder = encode ? new GraphRunner(d.encoder(), vae.weights(), ops) : null;
        this.owns = true;
    }

    /**
     * Decodes with a runner of {@code vae}'s decoder graph that the caller owns (the job server's,
     * on weights shared through the residency manager); {@link #close} leaves it open.
     */
    public VaeCodec(Vae vae, GraphRunner decoder) {
        this.vae = vae;
        this.decoder = decoder;
        this.encoder = null;
        this.owns = false;
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
        Tensor x = shrinking(decoder, Tensor.wrap(z, latent.n, latent.h, latent.w, c), bandRows, latent.h * vae.config().scale());
        float[] img = x.toArray();
        for (int i = 0; i < img.length; i++) img[i] = Math.clamp((img[i] + 1f) / 2f, 0f, 1f);
        return Tensor.wrap(img, x.n, x.h, x.w, x.c);
    }

    /**
     * Runs the decoder whole on {@code latent} and waits for the device, leaving the image on it
     * (no download, no conversion): the forward pass alone, timed as PyTorch's figures are.
     */
    public void forward(Tensor latent) {
        float[] z = latent.toArray();
        for (int i = 0; i < z.length; i++) z[i] = z[i] / vae.scaling() + vae.shift();
        Ops ops = decoder.ops();
        decoder.run(Tensor.wrap(z, latent.n, latent.h, latent.w, latent.c), t -> {
            ops.synchronize();
            return null;
        });
    }

    /** The decoder's raw output in [-1, 1] for the decoder's input z (no scaling, no clamp): for goldens. */
    public Tensor decodeRaw(Tensor z, int bandRows) {
        return shrinking(decoder, z, bandRows, z.h * vae.config().scale());
    }

    /** The band height the last decode ended with (0: whole); less than asked when it ran out of memory. */
    public int lastBandRows() {
        return lastBandRows;
    }

    private int lastBandRows;

    /**
     * Runs {@code runner} on x whole (0) or in bands of {@code rows} output rows (of {@code outH}),
     * shrinking on running out of device memory (see the class comment).
     */
    private Tensor shrinking(GraphRunner runner, Tensor x, int rows, int outH) {
        boolean ranOut = false;
        while (true) {
            lastBandRows = rows;
            try {
                if (rows > 0 && x.n > 1) throw new IllegalArgumentException("a tiled run takes one image at a time, not " + x.n);
                if (rows == 0) return runner.run(x);
                LayerTiledRunner tiled = new LayerTiledRunner(runner);
                Tensor out = tiled.run(x, rows, ranOut ? 0 : deviceAllowance(runner, x.h, x.w, rows));
                lastStored = tiled.storedBytes();
                return out;
            } catch (DeviceOutOfMemory e) {
                ranOut = true;
                int next = rows == 0 ? (outH + 1) / 2 : rows / 2;
                if (x.n > 1 || next < LayerBands.MIN_ROWS) throw e;
                var memory = runner.memory();
                if (memory != null) memory.rung("shrink-bands", (rows == 0 ? "whole" : rows + " rows") + " -> " + next + " rows");
                rows = next;
            }
        }
    }

    private long[] lastStored = {0, 0};

    /** Bytes of intermediates the last tiled run kept on the device, and in host memory. */
    public long[] lastStoredBytes() {
        return lastStored.clone();
    }

    /**
     * Device bytes a tiled run of an (h, w) input in bands of {@code rows} output rows may keep
     * its intermediates in: the usable budget (up to the critical pressure level) less what is
     * allocated now (the weights) and the largest step's peak.
     */
    static long deviceAllowance(GraphRunner runner, int h, int w, int rows) {
        var m = runner.memory();
        if (m == null) return 0;
        long usable = (long) (m.ledger().limit() * m.thresholds().critical());
        long step = LayerBands.peak(runner.graph(), h, w, rows, runner.ops().memoryModel());
        return Math.max(0, usable - m.stats().allocated() - step);
    }

    public GraphRunner encoder() {
        return encoder;
    }

    /** The encoder's moments (mean, then log-variance) for an image in [-1, 1], whole (0) or in bands of moment rows: for goldens. */
    public Tensor encodeRaw(Tensor x, int bandRows) {
        return shrinking(encoder, x, bandRows, x.h / vae.config().scale());
    }

    /**
     * Image (N, H, W, 3) in [0, 1] to the latent (N, H/s, W/s, C): the distribution's mean, scaled;
     * whole (0) or exactly tiled in bands of {@code bandRows} latent rows (one image at a time).
     */
    public Tensor encode(Tensor image, int bandRows) {
        float[] x = image.toArray();
        for (int i = 0; i < x.length; i++) x[i] = 2f * x[i] - 1f;
        Tensor moments = encodeRaw(Tensor.wrap(x, image.n, image.h, image.w, image.c), bandRows);
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
        if (!owns) return;
        if (decoder != null) decoder.close();
        if (encoder != null) encoder.close();
    }
}
