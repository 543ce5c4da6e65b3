package dev.headroom.models;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.Weights;
import dev.headroom.core.image.FloatImage;
import dev.headroom.core.image.Quality;
import dev.headroom.core.image.Resample;
import dev.headroom.core.quant.WeightFormat;
import dev.headroom.models.image.ImageFiles;
import dev.headroom.runtime.GraphRunner;
import dev.headroom.runtime.ImageUpscaler;
import dev.headroom.runtime.TiledUpscaler;
import dev.headroom.runtime.cpu.CpuOps;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The default model with its kernels held compact (--weights int8, fp8, nf4), on the six photographs
 * of {@link QualityTest} (Y-PSNR at x2). The CPU keeps the kernels compact and expands one per
 * convolution call. Measured (2026-11-30): fp32 34.131 dB, bicubic 31.972; int8 34.037 (-0.094);
 * fp8 e4m3 31.725 (-2.406); NF4 29.584 (-4.547). int8 holds the bar (within 0.1 dB of
 * fp32); fp8 and NF4 do not: their kernels' relative RMS error is 2.7% and 9.2% against int8's
 * 0.55%, and this small dense network's loss grows with it (about 0.1 dB per (0.55%)^2 of error
 * power), so they fall below bicubic. Their bounds here only guard against getting worse.
 */
@Tag("slow")
class CompactWeightsQualityTest {
    @Test
    void compactKernelsKeepTheDefaultModelsQuality() {
        Model m = ModelLoader.load(DefaultModel.file());
        List<FloatImage[]> photos = new ArrayList<>();   // {hr, lr}
        double bicubic = 0;
        for (String name : QualityTest.PHOTOS) {
            FloatImage photo = ImageFiles.read(Path.of("examples", name), Long.MAX_VALUE);
            if (photo.channels() == 1) photo = photo.repeatChannel(3);
            FloatImage hr = QualityTest.centreCrop(photo.channels(0, 3), 320);
            FloatImage lr = Resample.bicubic(hr, hr.width() / 2, hr.height() / 2);
            photos.add(new FloatImage[] {hr, lr});
            bicubic += Quality.psnrY(Resample.bicubic(lr, hr.width(), hr.height()), hr, 2) / QualityTest.PHOTOS.size();
        }
        double fp32 = meanPsnr(m, m.weights(), photos);
        System.out.printf("mean Y-PSNR: bicubic %.3f dB, fp32 %.3f dB%n", bicubic, fp32);
        for (WeightFormat f : new WeightFormat[] {WeightFormat.INT8, WeightFormat.FP8, WeightFormat.NF4}) {
            Weights w = f.apply(m.weights());
            double p = meanPsnr(m, w, photos);
            System.out.printf("  %s: %.3f dB (%+.3f against fp32), kernels %.2f MB against %.2f MB in fp32%n", f, p, p - fp32,
                    w.storedBytes() / 1e6, m.weights().storedBytes() / 1e6);
            switch (f) {
                case INT8 -> assertTrue(Math.abs(p - fp32) <= 0.1, "int8 " + p + " dB against fp32 " + fp32 + " dB: more than 0.1 dB apart");
                case FP8 -> assertTrue(p - fp32 >= -2.6, "fp8 " + p + " dB: more than the 2.41 dB measured below fp32");
                default -> assertTrue(p - fp32 >= -4.8, "nf4 " + p + " dB: more than the 4.55 dB measured below fp32");
            }
        }
    }

    private static double meanPsnr(Model m, Weights w, List<FloatImage[]> photos) {
        double sum = 0;
        try (CpuOps ops = new CpuOps(); GraphRunner runner = new GraphRunner(m.graph(), w, ops)) {
            ImageUpscaler up = new ImageUpscaler(new TiledUpscaler(runner, m.valueRange()), 3);
            for (FloatImage[] p : photos) sum += Quality.psnrY(up.upscale(p[1], 256, 16, null), p[0], 2);
        }
        return sum / photos.size();
    }
}
