// Which convolutions of the default model (RDN x2) lose quality when held compact, on the six photographs
// of QualityTest (centre crops of CROP px, x2, Y-PSNR against fp32): the investigation behind WeightFormat.THIN.
//   ./test -DskipTests
//   java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp "target/classes:target/lib/*" \
//        scripts/bench/CompactSensitivity.java scales|layers|nf4-layers|keep [CROP]      (CROP default 128; run from the repository root)
// scales:     fp8 on every kernel with the per-channel scale amax/T for T = 448, 256, 240, 1 (equal relative error, different rounding)
// layers:     fp8 (amax/448) on one kernel at a time; nf4-layers: the same for NF4
// keep:       fp8, int8, NF4 with thin kernels (< 16 channels in or out) in fp16, and with the head and tail (8 kernels) in fp32
import dev.headroom.core.MapWeights;
import dev.headroom.core.TensorData;
import dev.headroom.core.Weights;
import dev.headroom.core.image.FloatImage;
import dev.headroom.core.image.Quality;
import dev.headroom.core.image.Resample;
import dev.headroom.core.quant.Compact;
import dev.headroom.core.quant.Fp8;
import dev.headroom.models.DefaultModel;
import dev.headroom.models.Model;
import dev.headroom.models.ModelLoader;
import dev.headroom.models.image.ImageFiles;
import dev.headroom.runtime.GraphRunner;
import dev.headroom.runtime.ImageUpscaler;
import dev.headroom.runtime.TiledUpscaler;
import dev.headroom.runtime.cpu.CpuOps;
import java.nio.file.Path;
import java.util.*;
import java.util.function.BiFunction;

class CompactSensitivity {
    static final List<String> PHOTOS = List.of("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "camera.png", "grace_hopper.jpg");
    static final Set<String> HEAD_AND_TAIL = Set.of("F_m1/kernel", "F_0/kernel", "GFF_1/kernel", "GFF_2/kernel", "UPN1/kernel", "UPN2/kernel", "UPN3/kernel", "SR/kernel");

    public static void main(String[] a) {
        String mode = a[0];
        int crop = a.length > 1 ? Integer.parseInt(a[1]) : 128;
        Model m = ModelLoader.load(DefaultModel.file());
        List<FloatImage[]> photos = new ArrayList<>();
        for (String name : PHOTOS) {
            FloatImage photo = ImageFiles.read(Path.of("examples", name), Long.MAX_VALUE);
            if (photo.channels() == 1) photo = photo.repeatChannel(3);
            FloatImage hr = centreCrop(photo.channels(0, 3), crop);
            photos.add(new FloatImage[] {hr, Resample.bicubic(hr, hr.width() / 2, hr.height() / 2)});
        }
        Weights w = m.weights();
        List<String> kernels = new ArrayList<>();
        for (String k : w.names()) if (w.get(k).rank() == 4) kernels.add(k);
        Set<String> all = new HashSet<>(kernels);
        double base = psnr(m, w, photos);
        System.out.printf("crop %d, %d kernels; fp32 %.3f dB%n", crop, kernels.size(), base);
        BiFunction<float[], Integer, float[]> f16 = (v, c) -> {
            float[] o = new float[v.length];
            for (int i = 0; i < v.length; i++) o[i] = Float.float16ToFloat(Float.floatToFloat16(v[i]));
            return o;
        };
        switch (mode) {
            case "scales" -> {
                for (float t : new float[] {448f, 256f, 240f, 1f}) {
                    double err = 0, norm = 0;
                    for (String k : kernels) {
                        float[] v = w.get(k).data(), q = fp8(v, w.get(k).dim(3), t);
                        for (int i = 0; i < v.length; i++) {
                            err += (v[i] - q[i]) * (double) (v[i] - q[i]);
                            norm += v[i] * (double) v[i];
                        }
                    }
                    System.out.printf("fp8, scale amax/%.0f: kernels' relative RMS error %.4f, %+.3f dB%n", t, Math.sqrt(err / norm),
                            psnr(m, with(w, all, (v, c) -> fp8(v, c, t)), photos) - base);
                }
                System.out.printf("int8: %+.3f dB; fp16: %+.3f dB%n", psnr(m, with(w, all, (v, c) -> Compact.int8(v, c).expand()), photos) - base,
                        psnr(m, with(w, all, f16), photos) - base);
            }
            case "layers", "nf4-layers" -> {
                for (String k : kernels) {
                    BiFunction<float[], Integer, float[]> q = mode.equals("layers") ? (v, c) -> fp8(v, c, 448f) : (v, c) -> Compact.nf4(v, 64).expand();
                    System.out.printf("%s %-16s %-16s %8d values, alone %+.3f dB%n", mode.equals("layers") ? "fp8" : "NF4", k,
                            Arrays.toString(w.get(k).shape()), w.get(k).count(), psnr(m, with(w, Set.of(k), q), photos) - base);
                }
            }
            case "keep" -> {
                Set<String> thin = new HashSet<>();
                for (String k : kernels) if (Math.min(w.get(k).dim(2), w.get(k).dim(3)) < 16) thin.add(k);
                Set<String> rest = new HashSet<>(all);
                rest.removeAll(thin);
                Set<String> body = new HashSet<>(all);
                body.removeAll(HEAD_AND_TAIL);
                System.out.println("thin kernels: " + thin);
                for (float t : new float[] {448f, 240f}) {
                    System.out.printf("fp8 amax/%.0f: thin in fp16 %+.3f dB; head and tail in fp32 %+.3f dB%n", t,
                            psnr(m, with(with(w, rest, (v, c) -> fp8(v, c, t)), thin, f16), photos) - base,
                            psnr(m, with(w, body, (v, c) -> fp8(v, c, t)), photos) - base);
                }
                System.out.printf("int8: thin in fp16 %+.3f dB%n", psnr(m, with(with(w, rest, (v, c) -> Compact.int8(v, c).expand()), thin, f16), photos) - base);
                System.out.printf("NF4: all %+.3f dB; thin in fp16 %+.3f dB; head and tail in fp32 %+.3f dB%n",
                        psnr(m, with(w, all, (v, c) -> Compact.nf4(v, 64).expand()), photos) - base,
                        psnr(m, with(with(w, rest, (v, c) -> Compact.nf4(v, 64).expand()), thin, f16), photos) - base,
                        psnr(m, with(w, body, (v, c) -> Compact.nf4(v, 64).expand()), photos) - base);
            }
            case "unique" -> {
                Map<String, Integer> shapes = new HashMap<>();
                for (String k : kernels) shapes.merge(Arrays.toString(w.get(k).shape()), 1, Integer::sum);
                Set<String> keep = new HashSet<>();
                long kept = 0, values = 0;
                for (String k : kernels) {
                    TensorData t = w.get(k);
                    values += t.count();
                    if (Math.min(t.dim(2), t.dim(3)) < 16 || shapes.get(Arrays.toString(t.shape())) == 1) {
                        keep.add(k);
                        kept += t.count();
                    }
                }
                Set<String> rest = new HashSet<>(all);
                rest.removeAll(keep);
                System.out.printf("thin or of a shape no other kernel has, in fp16: %s (%.1f%% of the values)%n", keep, 100.0 * kept / values);
                for (float t : new float[] {448f, 240f}) {
                    System.out.printf("fp8 amax/%.0f: %+.3f dB%n", t, psnr(m, with(with(w, rest, (v, c) -> fp8(v, c, t)), keep, f16), photos) - base);
                }
                System.out.printf("int8: %+.3f dB%n", psnr(m, with(with(w, rest, (v, c) -> Compact.int8(v, c).expand()), keep, f16), photos) - base);
                System.out.printf("NF4: %+.3f dB%n", psnr(m, with(with(w, rest, (v, c) -> Compact.nf4(v, 64).expand()), keep, f16), photos) - base);
            }
            default -> throw new IllegalArgumentException("mode: scales, layers, nf4-layers, keep or unique");
        }
    }

    static FloatImage centreCrop(FloatImage img, int max) {
        int w = Math.min(max, img.width()) & ~1, h = Math.min(max, img.height()) & ~1;
        int x0 = (img.width() - w) / 2, y0 = (img.height() - h) / 2;
        FloatImage out = FloatImage.blank(w, h, img.channels(), img.bitDepth());
        for (int y = 0; y < h; y++) System.arraycopy(img.data(), ((y0 + y) * img.width() + x0) * img.channels(), out.data(), y * w * img.channels(), w * img.channels());
        return out;
    }

    static double psnr(Model m, Weights w, List<FloatImage[]> photos) {
        double sum = 0;
        try (CpuOps ops = new CpuOps(); GraphRunner runner = new GraphRunner(m.graph(), w, ops)) {
            ImageUpscaler up = new ImageUpscaler(new TiledUpscaler(runner, m.valueRange()), 3);
            for (FloatImage[] p : photos) sum += Quality.psnrY(up.upscale(p[1], 256, 16, null), p[0], 2);
        }
        return sum / photos.size();
    }

    /** {@code w} with the kernels named in {@code which} replaced by f(values, output channels), in fp32. */
    static Weights with(Weights w, Set<String> which, BiFunction<float[], Integer, float[]> f) {
        Map<String, TensorData> out = new LinkedHashMap<>();
        for (String k : w.names()) {
            TensorData t = w.get(k);
            out.put(k, which.contains(k) ? new TensorData(k, t.shape(), f.apply(t.data(), t.dim(3))) : t);
        }
        return new MapWeights(out, "sensitivity");
    }

    /** fp8 e4m3 with a scale per output channel of amax / target, back in fp32. */
    static float[] fp8(float[] v, int cout, float target) {
        float[] s = new float[cout];
        for (int i = 0; i < v.length; i++) s[i % cout] = Math.max(s[i % cout], Math.abs(v[i]));
        float[] o = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            float sc = s[i % cout] == 0 ? 1 : s[i % cout] / target;
            o[i] = Fp8.decode(Fp8.encode(v[i] / sc)) * sc;
        }
        return o;
    }
}
