package dev.headroom.server;

import dev.headroom.core.image.InputImage;
import dev.headroom.core.residency.ResidencyPolicy;
import dev.headroom.models.Model;
import dev.headroom.models.image.ImageFiles;
import dev.headroom.models.image.ImageWriter;
import dev.headroom.runtime.GraphRunner;
import dev.headroom.runtime.ImageUpscaler;
import dev.headroom.runtime.Residency;
import dev.headroom.runtime.TiledUpscaler;
import dev.headroom.runtime.memory.DeviceMemory;

/**
 * Runs an upscale job the way {@code headroom upscale} does (same tile, batch, overlap and bands,
 * and the same streamed writer, so the same bytes), in a session of the shared device (one kept
 * from an earlier job where there is one: {@link DeviceSlot#session}):
 * the model's weights come from the device's residency manager (loaded once, shared with every
 * job of that model, never evicted while a job holds them; streamed when its kernels do not fit
 * beside a tile, {@link DeviceSlot#weightBudget}), and the job's activations are charged
 * to a ledger node of its own whose limit is its reservation. However the job ends, the node is
 * closed (which frees its memory at once and audits it for leaks), then the lease, and the session
 * goes back to the device (closed instead when the job did not end well).
 */
public final class UpscaleJobRunner implements JobRunner {

    @Override
    public Outcome run(Request r, DeviceSlot device, Control control) throws Exception {
        if (control.stop()) throw new Stopped();
        InputImage img = ImageFiles.readInput(r.input(), r.maxPixels(), ImageFiles.ReadOptions.STRICT).image();
        Model m = r.model().model();
        Residency.Loader loader = () -> new Residency.Source(m.graph(), m.weights(), m.valueRange());
        DeviceMemory memory = device.device().memory();
        try (DeviceSlot.SessionLease session = device.session();
             Residency.Lease weights = device.residency().acquire(r.model().name(), ResidencyPolicy.Priority.NORMAL, loader, session.session(), device.weightBudget(m));
             var job = memory.job("job " + r.job().id(), r.reservation());
             GraphRunner runner = new GraphRunner(weights.graph(), weights.weights(), session.session())) {
            runner.bands(true);
            TiledUpscaler tiled = new TiledUpscaler(runner, weights.valueRange());
            tiled.batch(r.job().batch());
            ImageUpscaler up = new ImageUpscaler(tiled, weights.graph().inputChannels());
            // rows go to the file as they become final, as `headroom upscale` writes them; no file unless finished
            try (img; ImageWriter writer = ImageWriter.open(r.output(), r.encoding(), img.width() * m.scale(), img.height() * m.scale(),
                    img.channels(), img.bitDepth())) {
                up.upscale(img, r.job().tile(), r.overlap(), (done, total) -> {
                    control.progress(done, total);
                    if (done < total && control.stop()) throw new Stopped();
                }, writer);
                if (control.stop()) throw new Stopped();
                writer.finish();
            }
            session.clean();
        }
        return new Outcome(java.util.Map.of(), 0);
    }
}
