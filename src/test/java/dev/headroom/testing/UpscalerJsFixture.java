package dev.headroom.testing;

import dev.headroom.core.image.FloatImage;
import dev.headroom.models.Model;
import dev.headroom.models.ModelLoader;
import dev.headroom.models.image.ImageFiles;
import dev.headroom.runtime.GraphRunner;
import dev.headroom.runtime.Ops;
import dev.headroom.runtime.TiledUpscaler;
import java.nio.file.Path;

/**
 * One @upscalerjs/esrgan-{slim,medium,thick} model (MIT; TF.js layers) run on its package's
 * 128x128 fixture and compared with the output UpscalerJS made from it, in 8-bit steps (LSB).
 */
public record UpscalerJsFixture(Path pkg, String size, int scale) {
    public static final String VERSION = "1.0.0";

    public static String packageName(String size) {
        return "@upscalerjs/esrgan-" + size;
    }

    /** The result of one run: the largest difference and how many of how many values differ. */
    public record Result(Model model, int maxLsb, long differing, int values, double ms) {
        @Override
        public String toString() {
            return String.format("%s (%s, range 0..%d): max difference %d LSB, %d of %d values differ; %.0f ms",
                    model.family(), model.details(), (int) model.valueRange(), maxLsb, differing, values, ms);
        }
    }

    public Model load() {
        return ModelLoader.load(pkg.resolve("models/x" + scale + "/model.json"));
    }

    /** Upscales the fixture with {@code ops} (one 128 tile) and compares it with the reference output. */
    public Result run(Model m, Ops ops) {
        FloatImage fixture = ImageFiles.read(pkg.resolve("assets/fixture.png"), Long.MAX_VALUE).channels(0, 3);
        FloatImage expected = ImageFiles.read(pkg.resolve("assets/samples/" + scale + "x/result.png"), Long.MAX_VALUE).channels(0, 3);
        long t0 = System.nanoTime();
        FloatImage out;
        try (GraphRunner runner = new GraphRunner(m.graph(), m.weights(), ops)) {
            out = new TiledUpscaler(runner, m.valueRange()).upscale(fixture, 128, 0, null);
        }
        double ms = (System.nanoTime() - t0) / 1e6;
        int maxLsb = 0;
        long off = 0;
        for (int i = 0; i < out.data().length; i++) {
            int got = Math.round(Math.clamp(out.data()[i], 0f, 1f) * 255f);
            int want = Math.round(expected.data()[i] * 255f);
            int d = Math.abs(got - want);
            maxLsb = Math.max(maxLsb, d);
            if (d > 0) off++;
        }
        return new Result(m, maxLsb, off, out.data().length, ms);
    }
}
