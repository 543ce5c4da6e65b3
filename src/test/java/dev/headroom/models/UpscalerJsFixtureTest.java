package dev.headroom.models;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.runtime.cpu.CpuOps;
import dev.headroom.testing.UpscalerJsFixture;
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
        var pkg = NpmPackage.unpacked(UpscalerJsFixture.packageName(size), UpscalerJsFixture.VERSION).resolve("package");
        var fixture = new UpscalerJsFixture(pkg, size, scale);
        Model m = fixture.load();
        assertEquals(scale, m.scale());
        assertEquals(size.equals("thick") ? "RRDN" : "RDN", m.family());
        var r = fixture.run(m, new CpuOps());
        System.out.printf("esrgan-%s x%d on the CPU: %s%n", size, scale, r);
        assertTrue(r.maxLsb() <= 1, "max difference " + r.maxLsb() + " LSB");
    }
}
