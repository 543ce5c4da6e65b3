package dev.headroom.server;

import dev.headroom.core.image.FloatImage;
import dev.headroom.models.Model;
import dev.headroom.models.image.ImageFiles;
import dev.headroom.runtime.GraphRunner;
import dev.headroom.runtime.ImageUpscaler;
import dev.headroom.runtime.Ops;
import dev.headroom.runtime.TiledUpscaler;

/**
 * Runs an upscale job the way {@code headroom upscale} does (same tile, batch, overlap and bands,
 * and the same writer, so the same pixels), on a backend opened for this job with its reservation as budget; the
 * backend is closed when the job ends, however it ends, which frees its memory at once and audits
 * it for leaks.
 */
public final class UpscaleJobRunner implements JobRunner {

    @Override
    public Outcome run(Request r, DeviceSlot device, Control control) throws Exception {
        if (control.stop()) throw new Stopped();
        FloatImage img = ImageFiles.read(r.input(), r.maxPixels());
        Model m = r.model().model();
        Ops ops = device.spec().backend().open(r.reservation());
        try {
            control.opened(ops.memory());
            try (GraphRunner runner = new GraphRunner(m.graph(), m.weights(), ops)) {
                runner.bands(true);
                TiledUpscaler tiled = new TiledUpscaler(runner, m.valueRange());
                tiled.batch(r.job().batch());
                ImageUpscaler up = new ImageUpscaler(tiled, m.graph().inputChannels());
                FloatImage out = up.upscale(img, r.job().tile(), r.overlap(), (done, total) -> {
                    control.progress(done, total);
                    if (done < total && control.stop()) throw new Stopped();
                });
                if (control.stop()) throw new Stopped();
                ImageFiles.writePng(out, r.output());   // as `headroom upscale` writes it: atomically, no partial file
            }
            var mem = ops.memory();
            return new Outcome(mem == null ? java.util.Map.of() : mem.rungs(), mem == null ? 0 : mem.stats().allocatedPeak());
        } finally {
            if (ops instanceof AutoCloseable c) c.close();
        }
    }
}
