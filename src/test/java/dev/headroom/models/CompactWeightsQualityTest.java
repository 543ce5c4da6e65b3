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
 * convolution call. The compact formats hold thin kernels and those outside the repeated blocks in
 * fp16 (WeightFormat.keepsFp16: 6.4% of this model's values). Measured (2026-11-30): fp32 34.131 dB,
 * bicubic 31.972; int8 34.132 (+0.001), fp8 e4m3 34.095 (-0.037), NF4 33.741 (-0.391, 1.77 dB above
 * bicubic), kernels 2.81 MB (int8, fp8) and 1.73 MB (NF4) against 10.48 MB. Before that rule, with
 * every kernel compact: int8 -0.094, fp8 -2.406, NF4 -4.547 dB; the loss came from six kernels,
 * not from rounding (fp8 rounds to nearest even, checked against every code; its kernels' relative
 * error is the format's 2.6% at every per-channel scale, yet the loss was -2.19 dB with scale
 * amax/448 and -0.19 with amax/256 on 128 px crops: a few sensitive kernels' rounding decided it).
 * The bounds are the issue's: int8 and fp8 within 0.1 dB of fp32, NF4 at least 1 dB above bicubic.
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
                case FP8 -> assertTrue(Math.abs(p - fp32) <= 0.1, "fp8 " + p + " dB against fp32 " + fp32 + " dB: more than 0.1 dB apart");
                default -> assertTrue(p - bicubic >= 1.0, "nf4 " + p + " dB: less than 1 dB above bicubic " + bicubic + " dB");
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
