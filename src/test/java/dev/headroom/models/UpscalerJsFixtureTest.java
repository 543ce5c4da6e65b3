package dev.headroom.models;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.image.FloatImage;
import dev.headroom.models.image.ImageFiles;
import dev.headroom.runtime.GraphRunner;
import dev.headroom.runtime.TiledUpscaler;
import dev.headroom.runtime.cpu.CpuOps;
import java.nio.file.Path;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The @upscalerjs/esrgan-{slim,medium,thick} packages (MIT) ship TF.js models, a 128x128 fixture
 * and the outputs UpscalerJS made from it. headroom must reproduce them within 1 LSB: the model
 * (from model.json) and its value range (probed: slim and medium take 0..255, thick 0..1) both
 * come from the files alone. The packages are fetched with npm on first run (cached).
 */
@Tag("slow")
class UpscalerJsFixtureTest {

    @ParameterizedTest(name = "esrgan-{0} x{1}")
    @CsvSource({"slim, 2", "slim, 3", "slim, 4", "medium, 2", "medium, 3", "medium, 4", "thick, 2", "thick, 3", "thick, 4"})
    void reproducesTheReferenceOutput(String size, int scale) {
        Path pkg = NpmPackage.unpacked("@upscalerjs/esrgan-" + size, "1.0.0").resolve("package");
        Model m = ModelLoader.load(pkg.resolve("models/x" + scale + "/model.json"));
        assertEquals(scale, m.scale());
        assertEquals(size.equals("thick") ? "RRDN" : "RDN", m.family());
        FloatImage fixture = ImageFiles.read(pkg.resolve("assets/fixture.png"), Long.MAX_VALUE).channels(0, 3);
        FloatImage expected = ImageFiles.read(pkg.resolve("assets/samples/" + scale + "x/result.png"), Long.MAX_VALUE).channels(0, 3);

        long t0 = System.nanoTime();
        FloatImage out = new TiledUpscaler(new GraphRunner(m.graph(), m.weights(), new CpuOps()), m.valueRange())
                .upscale(fixture, 128, 0, null);
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
        System.out.printf("esrgan-%s x%d (%s, range 0..%d): max difference %d LSB, %d of %d values differ; %.0f ms on the CPU%n",
                size, scale, m.details(), (int) m.valueRange(), maxLsb, off, out.data().length, ms);
        assertTrue(maxLsb <= 1, "max difference " + maxLsb + " LSB");
    }
}
