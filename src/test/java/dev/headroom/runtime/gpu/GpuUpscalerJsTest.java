package dev.headroom.runtime.gpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.Precision;
import dev.headroom.models.NpmPackage;
import dev.headroom.testing.HalfGpuTestBase;
import dev.headroom.testing.UpscalerJsFixture;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The UpscalerJS fixtures (RDN: esrgan-slim and -medium; RRDN: esrgan-thick) on the GPU: within
 * 1 LSB of UpscalerJS's own output in fp32, and within {@link #F16_LSB} in fp16. The packages come
 * from headroom's cache and are never fetched here (the GPU machine has no network): a package
 * that is not there skips its cases, saying how to put it there.
 */
class GpuUpscalerJsTest extends HalfGpuTestBase {
    /** fp16 storage rounds every activation to 11 significant bits; on 0..255 models that is up to 1/8 of a step per layer. */
    static final int F16_LSB = 3;
    @ParameterizedTest(name = "esrgan-{0} x{1} {2}")
    @CsvSource({"slim, 2, F32", "slim, 3, F32", "slim, 4, F32", "medium, 2, F32", "medium, 3, F32", "medium, 4, F32",
            "thick, 2, F32", "thick, 3, F32", "thick, 4, F32",
            "slim, 2, F16", "slim, 3, F16", "slim, 4, F16", "medium, 2, F16", "medium, 3, F16", "medium, 4, F16",
            "thick, 2, F16", "thick, 3, F16", "thick, 4, F16"})
    void reproducesUpscalerJs(String size, int scale, Precision precision) {
        var dir = NpmPackage.cached(UpscalerJsFixture.packageName(size), UpscalerJsFixture.VERSION);
        Assumptions.assumeTrue(dir.isPresent() && java.nio.file.Files.isDirectory(dir.get().resolve("package/models/x" + scale)),
                UpscalerJsFixture.packageName(size) + " x" + scale + " is not in " + NpmPackage.cacheRoot()
                        + "; run UpscalerJsFixtureTest once where npm works (it caches the package) and copy it there"
                        + " (to a GPU machine: scripts/device-pack, and --rest for what exceeds one call)");
        var fixture = new UpscalerJsFixture(dir.get().resolve("package"), size, scale);
        var r = fixture.run(fixture.load(), precision == Precision.F16 ? half : gpu);
        System.out.printf("esrgan-%s x%d on the GPU in %s: %s%n", size, scale, precision, r);
        int bound = precision == Precision.F16 ? F16_LSB : 1;
        assertTrue(r.maxLsb() <= bound, precision + ": max difference " + r.maxLsb() + " LSB, bound " + bound);
    }
}
