package dev.headroom.server;

import dev.headroom.core.image.FloatImage;
import dev.headroom.core.residency.ResidencyPolicy;
import dev.headroom.models.LatentFiles;
import dev.headroom.models.Vae;
import dev.headroom.models.VaeCodec;
import dev.headroom.models.image.ImageFiles;
import dev.headroom.runtime.GraphRunner;
import dev.headroom.runtime.Residency;
import dev.headroom.runtime.Tensor;

/**
 * Runs a decode job (a diffusion latent to an image) the way {@code headroom decode} does: the same
 * {@link VaeCodec} (latent scaling, whole or exactly tiled in the band height chosen at submission,
 * shrinking bands on running out of memory, clamping) and the same PNG writer, so the same bytes; in
 * a session of the shared device (as an upscale job's), the decoder's weights through the residency manager,
 * its activations charged to a ledger node limited to its reservation. A decode has no tile loop
 * the job could stop in: a cancel is seen before it starts and before its result is written.
 */
public final class DecodeJobRunner implements JobRunner {

    @Override
    public Outcome run(Request r, DeviceSlot device, Control control) throws Exception {
        if (control.stop()) throw new Stopped();
        Vae vae = r.model().vae();
        if (vae == null) throw new IllegalStateException("model '" + r.model().name() + "' is not a VAE");
        Tensor latent = JobRunner.timed(control, "read", () -> LatentFiles.read(r.input()));
        Residency.Loader loader = () -> new Residency.Source(vae.detected().decoder(), vae.weights(), 1f);
        try (SessionPool.Lease session = JobRunner.timed(control, "session", () -> device.session(r.job()));
             Residency.Lease weights = JobRunner.timed(control, "weights",
                     () -> device.residency().acquire(r.model().name(), ResidencyPolicy.Priority.NORMAL, loader, session.session()));
             var job = device.device().memory().job("job " + r.job().id(), r.reservation());
             GraphRunner runner = new GraphRunner(weights.graph(), weights.weights(), session.session())) {
            control.progress(0, 1);
            control.ran("session", device.name() + "#" + session.number());
            java.util.Map<String, Object> before = session.session().diagnostics();
            Tensor img = JobRunner.timed(control, "decode", () -> new VaeCodec(vae, runner).decode(latent, r.job().tile()));
            UpscaleJobRunner.sessionPhases(session.session(), before, control);
            if (control.stop()) throw new Stopped();
            JobRunner.timed(control, "encode", () -> {
                ImageFiles.writePng(new FloatImage(img.w, img.h, 3, img.toArray(), 8), r.output());
                return null;
            });
            control.progress(1, 1);
            session.clean();
        }
        return new Outcome(java.util.Map.of(), 0);
    }
}
