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
import java.util.Map;

/**
 * Runs an upscale job the way {@code headroom upscale} does (same tile, batch, overlap and bands,
 * and the same streamed writer, so the same bytes), in a session of the shared device (one kept
 * from an earlier job where there is one: {@link DeviceSlot#session}):
 * the model's weights come from the device's residency manager (loaded once, shared with every
 * job of that model, never evicted while a job holds them; streamed when its kernels do not fit
 * beside a tile, {@link DeviceSlot#weightBudget}), and the job's activations are charged
 * to a ledger node of its own whose limit is its reservation. However the job ends, the node is
 * closed (which frees its memory at once and audits it for leaks), then the lease, and the session
 * goes back to the device (closed instead when the job did not end well). Once the last tile is
 * done and all that is closed, the job leaves the device ({@link Control#leftDevice}): the encoders
 * finishing its file on the host no longer hold a device slot the next job could use.
 */
public final class UpscaleJobRunner implements JobRunner {

    @Override
    public Outcome run(Request r, DeviceSlot device, Control control) throws Exception {
        if (control.stop()) throw new Stopped();
        InputImage img = JobRunner.timed(control, "read",
                () -> ImageFiles.readInput(r.input(), r.maxPixels(), ImageFiles.ReadOptions.STRICT).image());
        Model m = r.model().model();
        Residency.Loader loader = () -> new Residency.Source(m.graph(), m.weights(), m.valueRange());
        DeviceMemory memory = device.device().memory();
        // img first: a writer, session, weights or ledger node that cannot be had still closes the input (a streamed one's decoder).
        // The writer outlives the device's part: rows go to the file as they become final, as `headroom upscale` writes them,
        // and what the encoders still hold when the last tile is done is finished after the job has left the device
        try (img; ImageWriter writer = ImageWriter.open(r.output(), r.encoding(), img.width() * m.scale(), img.height() * m.scale(),
                img.channels(), img.bitDepth())) {
            try (SessionPool.Lease session = JobRunner.timed(control, "session", () -> device.session(r.job()));
                 Residency.Lease weights = JobRunner.timed(control, "weights",
                         () -> device.residency().acquire(r.model().name(), ResidencyPolicy.Priority.NORMAL, loader, session.session(), device.weightBudget(m)));
                 var job = memory.job("job " + r.job().id(), r.reservation());
                 GraphRunner runner = new GraphRunner(weights.graph(), weights.weights(), session.session())) {
                runner.bands(true);
                TiledUpscaler tiled = new TiledUpscaler(runner, weights.valueRange());
                tiled.batch(r.job().batch());
                ImageUpscaler up = new ImageUpscaler(tiled, weights.graph().inputChannels());
                control.ran("session", device.name() + "#" + session.number());
                Map<String, Object> before = session.session().diagnostics();
                long t0 = System.nanoTime();
                up.upscale(img, r.job().tile(), r.overlap(), (done, total) -> {
                    control.progress(done, total);
                    if (done < total && control.stop()) throw new Stopped();
                }, writer);
                control.phase("upscale", System.nanoTime() - t0);
                if (control.stop()) throw new Stopped();
                sessionPhases(session.session(), before, control);
                session.clean();
            }
            // the job's device memory is freed and audited, its session and weights given back: the device may take the next job
            control.leftDevice();
            JobRunner.timed(control, "finish_file", () -> {
                writer.finish();   // no file unless finished
                return null;
            });
            // CPU time on the encoder's threads (may exceed the wall time) and in file writes, within the phases above
            control.phase("encode_cpu", writer.encodeNanos());
            control.phase("file_write", writer.writeNanos());
            control.phase("encode_wait", writer.waitNanos());   // the tiles' thread waiting for the encoders, within "upscale"
        }
        return new Outcome(Map.of(), 0);
    }

    /**
     * What the job's session spent building convolution plans and timing convolution choices (CUDA:
     * the change in its diagnostics over the job), within "upscale", and the engines its convolutions
     * run on after the job; nothing where the backend does not say.
     */
    static void sessionPhases(dev.headroom.runtime.Session session, Map<String, Object> before, Control control) {
        Map<String, Object> after = session.diagnostics();
        if (after.get("conv_strategies") != null) control.ran("conv_strategies", after.get("conv_strategies"));
        for (var e : Map.of("conv_plan_build_ms", "conv_plans", "conv_tuning_ms", "conv_tuning").entrySet()) {
            if (after.get(e.getKey()) instanceof Number a && before.get(e.getKey()) instanceof Number b) {
                control.phase(e.getValue(), Math.max(0, Math.round((a.doubleValue() - b.doubleValue()) * 1e6)));
            }
        }
    }
}
