package dev.headroom.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.image.FloatImage;
import dev.headroom.core.image.InputImage;
import dev.headroom.models.image.ImageFiles;
import dev.headroom.testing.HostileFiles;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A JPEG turned by its EXIF orientation is read as its samples and turned as the tiler reads it
 * (not copied as floats twice): the same floats as the turned float image of the whole path, for
 * every orientation, and the same upscale.
 */
class OrientedJpegInputTest {
    @TempDir
    Path dir;

    @Test
    void aTurnedJpegIsHeldAsItsSamplesAndReadsAsTheTurnedFloatImage() throws Exception {
        BufferedImage pic = new BufferedImage(37, 22, BufferedImage.TYPE_INT_RGB);
        Random r = new Random(5);
        for (int y = 0; y < pic.getHeight(); y++) for (int x = 0; x < pic.getWidth(); x++) pic.setRGB(x, y, (x * 7) << 16 | (y * 11) << 8 | r.nextInt(256));
        var g = GraphRunnerTest.denseGraph();
        var w = GraphRunnerTest.randomWeights(g, new Random(6));
        for (int o = 2; o <= 8; o++) {
            Path file = dir.resolve("turned-" + o + ".jpg");
            Files.write(file, HostileFiles.jpegWithOrientation(pic, o));
            FloatImage expected = ImageFiles.read(file, Long.MAX_VALUE, ImageFiles.ReadOptions.STRICT);   // decoded, as floats, turned
            ImageFiles.Input in = ImageFiles.readInput(file, Long.MAX_VALUE, ImageFiles.ReadOptions.STRICT);
            assertTrue(in.decodedWhole().contains("EXIF orientation " + o), in.decodedWhole());
            InputImage img = in.image();
            assertFalse(img instanceof FloatImage, o + ": held as samples, not as a turned float copy (" + img.getClass().getSimpleName() + ")");
            assertEquals(o >= 5 ? 22 : 37, img.width());
            assertArrayEquals(expected.data(), img.toFloat().data(), "orientation " + o);
            try (var ops = new dev.headroom.runtime.cpu.CpuOps(); GraphRunner runner = new GraphRunner(g, w, ops)) {
                ImageUpscaler up = new ImageUpscaler(new TiledUpscaler(runner, 255f), 3);
                assertArrayEquals(up.upscale(expected, 16, 4, null).data(), up.upscale(img, 16, 4, null).data(), "orientation " + o + ": the same upscale");
            }
        }
    }
}
