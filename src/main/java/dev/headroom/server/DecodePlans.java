package dev.headroom.server;

import dev.headroom.core.Sizes;
import dev.headroom.core.plan.DeviceModel;
import dev.headroom.core.plan.LayerBands;
import dev.headroom.core.plan.MemoryPlan;
import dev.headroom.core.plan.Planner;
import dev.headroom.core.graph.Graph;
import dev.headroom.models.LatentFiles;
import dev.headroom.models.Vae;
import dev.headroom.runtime.Tensor;
import java.nio.file.Path;
import java.util.HexFormat;

/**
 * Plans a decode job at submission as {@code headroom decode} plans it: whole when the decoder's
 * memory plan fits the budget's usable share, else exactly tiled in the largest bands that fit
 * (the job's tile is that band height in output rows, 0 for whole); a latent the VAE cannot take,
 * or one that cannot fit even in the smallest bands, is refused here with a one-line reason.
 */
final class DecodePlans {
    private DecodePlans() {}

    static Submissions.Planned plan(Submissions.Params p, Path upload, String inputHash, ModelCatalog.Loaded m, DeviceSlot device, long maxPixels) {
        Tensor latent;
        try {
            latent = LatentFiles.read(upload);   // (n, h, w, c)
        } catch (RuntimeException e) {
            String why = ApiError.why(e).replace(upload.toString() + ": ", "").replace(upload.getFileName() + ": ", "");   // the upload's name is the server's business
            throw ApiError.unprocessable("the latent cannot be read (" + why + "); send safetensors (a tensor 'latent' or the only one), .npy or a "
                    + "PyTorch .pt of shape [1, C, h, w]");
        }
        Vae vae = m.vae();
        if (vae == null) {
            throw ApiError.unprocessable("model '" + p.model() + "' is not a VAE; a decode needs a VAE this server knows (--model NAME=VAE_FILE)");
        }
        if (latent.n != 1) throw ApiError.unprocessable("the latent holds " + latent.n + " images; send one latent [1, C, h, w] per job");
        if (latent.c != vae.config().latent()) {
            throw ApiError.unprocessable("the latent has " + latent.c + " channels, but model '" + p.model() + "' is a " + vae.family().label + " VAE with "
                    + vae.config().latent() + " latent channels");
        }
        int s = vae.config().scale();
        long pixels = (long) latent.w * s * latent.h * s;
        if (pixels > maxPixels) {
            throw new ApiError(413, "Content Too Large", "the latent decodes to " + latent.w * s + "x" + latent.h * s + " = " + pixels
                    + " pixels, over this server's limit of " + maxPixels + " (--max-pixels); send a smaller latent");
        }
        Graph g = vae.detected().decoder();
        DeviceModel model = device.memoryModel();
        long usable = (long) (device.budget() * device.usable());
        MemoryPlan whole = Planner.plan(g, 1, latent.h, latent.w, model, true);   // as the decoder's runner plans it
        int rows = p.tile() != null ? p.tile() : whole.peak() <= usable ? 0 : LayerBands.fit(g, latent.h, latent.w, model, whole.weights(), usable);
        long peak = rows == 0 ? whole.peak() : whole.weights() + LayerBands.peak(g, latent.h, latent.w, rows, model);
        if ((rows == 0 && whole.peak() > usable) || peak > usable) {
            throw ApiError.unprocessable("this decode cannot fit on " + device.name() + " even alone: " + Sizes.format(peak) + " needed"
                    + (rows > 0 ? " in bands of " + rows + " rows" : " even in bands of " + LayerBands.MIN_ROWS + " rows") + ", "
                    + Sizes.format(usable) + " usable");
        }
        var md = DataDir.sha256();
        String key = String.join("|", "decode-v1", inputHash, m.fileHash(), device.gpu() ? "cuda" : "cpu", device.precision().name(), "rows=" + rows,
                "scaling=" + vae.scaling(), "shift=" + vae.shift());
        return new Submissions.Planned(latent.w, latent.h, s, peak, whole.weights(), rows, 1, 1,
                HexFormat.of().formatHex(md.digest(key.getBytes(java.nio.charset.StandardCharsets.UTF_8))));
    }
}
