package dev.headroom.runtime.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.image.FloatImage;
import dev.headroom.models.Model;
import dev.headroom.models.ModelLoader;
import dev.headroom.runtime.GraphRunner;
import dev.headroom.runtime.TiledUpscaler;
import dev.headroom.testing.Golden;
import dev.headroom.testing.GpuTestBase;
import dev.headroom.testing.SampleCollector;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Blending and conversion to samples on the device (CudaWindow, window_kernels.cu) against the
 * host's blend of the same tiles: the same samples bit for bit, and the device memory given back.
 * Both runs share one session, so every convolution runs the same plan (device-test times every
 * shape at first sight) and the tiles' outputs are identical.
 */
class GpuWindowTest extends GpuTestBase {

    @ParameterizedTest(name = "{0} {1}x{2} tile {3} overlap {4} batch {5} {6}-bit")
    @CsvSource({"rrdbnet-x4.pth, 70, 53, 32, 8, 1, 8", "rrdbnet-x4.pth, 61, 40, 24, 6, 3, 16", "rrdbnet-x2.pth, 45, 37, 20, 4, 2, 8",
            "srvgg-x4.pth, 50, 50, 64, 0, 1, 8"})
    void deviceBlendGivesTheHostsSamples(String file, int w, int h, int tile, int overlap, int batch, int bits) {
        Model m = ModelLoader.load(Golden.dir().resolve(file));
        Random r = new Random(11);
        float[] px = new float[w * h * 3];
        for (int i = 0; i < px.length; i++) px[i] = r.nextFloat();
        FloatImage img = new FloatImage(w, h, 3, px, 8);
        int rowValues = w * m.scale() * 3;
        SampleCollector host = new SampleCollector(bits, rowValues), device = new SampleCollector(bits, rowValues);
        long before = gpu.memory().allocatedBytes() - gpu.heldBytes();
        try (GraphRunner runner = new GraphRunner(m.graph(), m.weights(), gpu)) {
            TiledUpscaler up = new TiledUpscaler(runner, m.valueRange());
            up.batch(batch);
            System.setProperty("headroom.device-blend", "false");
            try {
                up.upscale(img, tile, overlap, null, host);
            } finally {
                System.clearProperty("headroom.device-blend");
            }
            up.upscale(img, tile, overlap, null, device);
        }
        assertEquals(before, gpu.memory().allocatedBytes() - gpu.heldBytes(), "the window, its samples and the weights given back");
        assertEquals(0, host.sampleBands, "the switch kept the host's blend");
        assertEquals(0, device.floatBands, "no float rows came home");
        assertTrue(device.sampleBands > 0);
        byte[] a = host.bytes(), b = device.bytes();
        int differ = 0;
        for (int i = 0; i < Math.min(a.length, b.length); i++) if (a[i] != b[i]) differ++;
        System.out.printf("GPU window %s %dx%d tile %d: %d of %d sample bytes differ from the host's blend%n", file, w, h, tile, differ, a.length);
        assertArrayEquals(a, b, file + ": the device's samples are the host's");
    }

    /** Gray (made on the device from the model's RGB) and alpha (joined on the host) images: the host blend's samples too. */
    @ParameterizedTest(name = "{0} channels {1}x{2} tile {3} {4}-bit")
    @CsvSource({"1, 70, 53, 32, 8", "2, 61, 40, 24, 16", "4, 45, 67, 32, 8"})
    void grayAndAlphaImagesBlendOnTheDeviceToTheHostsSamples(int c, int w, int h, int tile, int bits) {
        Model m = ModelLoader.load(Golden.dir().resolve("rrdbnet-x4.pth"));
        Random r = new Random(12);
        float[] px = new float[w * h * c];
        for (int i = 0; i < px.length; i++) px[i] = r.nextFloat();
        FloatImage img = new FloatImage(w, h, c, px, bits);
        int rowValues = w * m.scale() * c;
        SampleCollector host = new SampleCollector(bits, rowValues), device = new SampleCollector(bits, rowValues);
        long before = gpu.memory().allocatedBytes() - gpu.heldBytes();
        try (GraphRunner runner = new GraphRunner(m.graph(), m.weights(), gpu)) {
            dev.headroom.runtime.ImageUpscaler up = new dev.headroom.runtime.ImageUpscaler(new TiledUpscaler(runner, m.valueRange()), 3);
            System.setProperty("headroom.device-blend", "false");
            try {
                up.upscale(img, tile, 8, null, host);
            } finally {
                System.clearProperty("headroom.device-blend");
            }
            up.upscale(img, tile, 8, null, device);
        }
        assertEquals(before, gpu.memory().allocatedBytes() - gpu.heldBytes(), "the window, its samples and the weights given back");
        assertEquals(0, host.sampleBands, "the switch kept the host's blend");
        assertEquals(0, device.floatBands, "no float rows came home");
        byte[] a = host.bytes(), b = device.bytes();
        int differ = 0;
        for (int i = 0; i < Math.min(a.length, b.length); i++) if (a[i] != b[i]) differ++;
        System.out.printf("GPU window %d channels %dx%d: %d of %d sample bytes differ from the host's blend%n", c, w, h, differ, a.length);
        assertArrayEquals(a, b, c + " channels: the device's samples are the host's");
    }
}
