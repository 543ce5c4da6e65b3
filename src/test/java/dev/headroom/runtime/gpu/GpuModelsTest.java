package dev.headroom.runtime.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.image.FloatImage;
import dev.headroom.core.image.Quality;
import dev.headroom.models.Model;
import dev.headroom.models.ModelLoader;
import dev.headroom.runtime.GraphRunner;
import dev.headroom.runtime.Tensor;
import dev.headroom.runtime.TiledUpscaler;
import dev.headroom.runtime.cpu.CpuOps;
import dev.headroom.testing.Golden;
import dev.headroom.testing.GpuTestBase;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Whole models on the GPU in fp32: PyTorch's golden outputs, and a tiled upscale against the CPU's. */
class GpuModelsTest extends GpuTestBase {
    @ParameterizedTest(name = "{0}")
    @CsvSource({"rrdbnet-x4.pth, rrdbnet-x4.out.hrt", "rrdbnet-x2.pth, rrdbnet-x2.out.hrt", "srvgg-x4.pth, srvgg-x4.out.hrt",
            "rrdbnet-x4.esrgan-keys.pth, rrdbnet-x4.out.hrt"})
    void matchesPyTorch(String file, String expected) {
        Model m = ModelLoader.load(Golden.dir().resolve(file));
        Golden in = Golden.read("input-20x28.hrt"), want = Golden.read(expected);
        try (GraphRunner runner = new GraphRunner(m.graph(), m.weights(), gpu)) {
            Tensor out = runner.run(Tensor.wrap(in.data(), in.shape()[0], in.shape()[1], in.shape()[2], in.shape()[3]));
            double err = Golden.relativeError(out.toArray(), want.data());
            System.out.printf("GPU %-28s max error / max |output| = %.2e%n", file, err);
            assertTrue(err <= 1e-4, file + ": " + err);
        }
    }

    @Test
    void tiledUpscaleMatchesTheCpu() {
        Model m = ModelLoader.load(Golden.dir().resolve("rrdbnet-x4.pth"));
        Random r = new Random(7);
        float[] px = new float[70 * 53 * 3];
        for (int i = 0; i < px.length; i++) px[i] = r.nextFloat();
        FloatImage img = new FloatImage(70, 53, 3, px, 8);
        FloatImage cpuOut = new TiledUpscaler(new GraphRunner(m.graph(), m.weights(), new CpuOps()), 1f).upscale(img, 32, 8, null);
        long before = gpu.memory().allocatedBytes() - gpu.heldBytes();
        FloatImage gpuOut;
        try (GraphRunner runner = new GraphRunner(m.graph(), m.weights(), gpu)) {
            gpuOut = new TiledUpscaler(runner, 1f).upscale(img, 32, 8, null);
        }
        assertEquals(before, gpu.memory().allocatedBytes() - gpu.heldBytes(), "every tile's buffers and the weights given back");
        double psnr = Quality.psnr(cpuOut, gpuOut);
        System.out.printf("GPU vs CPU tiled upscale (RRDBNet x4, 70x53, tiles 32/8): PSNR %.1f dB%n", psnr);
        assertTrue(psnr > 50, "PSNR " + psnr);
    }
}
