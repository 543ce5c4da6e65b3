package dev.headroom.models;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.image.FloatImage;
import dev.headroom.core.image.Quality;
import dev.headroom.core.image.Resample;
import dev.headroom.models.image.ImageFiles;
import dev.headroom.runtime.GraphRunner;
import dev.headroom.runtime.ImageUpscaler;
import dev.headroom.runtime.TiledUpscaler;
import dev.headroom.runtime.cpu.CpuOps;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The default model (idealo RDN psnr-small x2) against bicubic on real photographs, as SR papers
 * measure: the low-resolution input is the photo shrunk x2 with antialiased bicubic, and both
 * upscalers are scored by Y-PSNR (BT.601) against the original, 2 px border cropped. Photos are
 * centre-cropped to at most 320x320 to keep CI fast on two cores.
 */
@Tag("slow")
class QualityTest {
    static final List<String> PHOTOS = List.of("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "camera.png", "grace_hopper.jpg");

    @Test
    void defaultModelBeatsBicubicOnRealPhotographs() {
        Model m = ModelLoader.load(DefaultModel.file());
        ImageUpscaler up = new ImageUpscaler(new TiledUpscaler(new GraphRunner(m.graph(), m.weights(), new CpuOps()), m.valueRange()), 3);
        double sumModel = 0, sumBicubic = 0;
        System.out.printf("%-18s %9s %9s %7s%n", "photo (HR size)", "bicubic", m.family(), "gain");
        for (String name : PHOTOS) {
            FloatImage photo = ImageFiles.read(Path.of("examples", name), Long.MAX_VALUE);
            if (photo.channels() == 1) photo = photo.repeatChannel(3);
            FloatImage hr = centreCrop(photo.channels(0, 3), 320);
            FloatImage lr = Resample.bicubic(hr, hr.width() / 2, hr.height() / 2);
            FloatImage bicubic = Resample.bicubic(lr, hr.width(), hr.height());
            FloatImage sr = up.upscale(lr, 256, 16, null);
            double pb = Quality.psnrY(bicubic, hr, 2), pm = Quality.psnrY(sr, hr, 2);
            sumBicubic += pb;
            sumModel += pm;
            System.out.printf("%-18s %6.2f dB %6.2f dB %+6.2f dB%n", name + " " + hr.width() + "x" + hr.height(), pb, pm, pm - pb);
            assertTrue(pm > pb, name + ": model " + pm + " dB does not beat bicubic " + pb + " dB");
        }
        double meanModel = sumModel / PHOTOS.size(), meanBicubic = sumBicubic / PHOTOS.size();
        System.out.printf("%-18s %6.2f dB %6.2f dB %+6.2f dB%n", "mean", meanBicubic, meanModel, meanModel - meanBicubic);
        assertTrue(meanModel - meanBicubic >= 1.0, "mean gain " + (meanModel - meanBicubic) + " dB, expected at least 1 dB");
    }

    static FloatImage centreCrop(FloatImage img, int max) {
        int w = Math.min(max, img.width()) & ~1, h = Math.min(max, img.height()) & ~1;
        int x0 = (img.width() - w) / 2, y0 = (img.height() - h) / 2;
        FloatImage out = FloatImage.blank(w, h, img.channels(), img.bitDepth());
        for (int y = 0; y < h; y++) {
            System.arraycopy(img.data(), ((y0 + y) * img.width() + x0) * img.channels(), out.data(), y * w * img.channels(), w * img.channels());
        }
        return out;
    }
}
