package dev.headroom.models;

import dev.headroom.core.MapWeights;
import dev.headroom.core.TensorData;
import dev.headroom.models.arch.Detected;
import dev.headroom.models.arch.TorchArchitectures;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/**
 * Full-size architectures with seeded random weights, for benchmarks where no pretrained file can
 * be downloaded: the graph and the cost are the real ones, only the picture is noise.
 */
public final class SyntheticModels {
    private SyntheticModels() {}

    /** Names {@link #build} knows. */
    public static final String NAMES = "rrdbnet-x4 (Real-ESRGAN x4plus: 23 blocks, 64 features), rrdbnet-x4-6b (anime 6B), srvgg-x4 (compact: 16 convs)";

    public static Model build(String name, long seed) {
        Map<String, TensorData> sd = stateDict(name, seed);
        Detected d = TorchArchitectures.detect(sd);
        return new Model(Path.of(name), "synthetic (seed " + seed + ")", d.family(), d.details(), "float32",
                d.graph(), new MapWeights(d.weights(), name), 1f, "PyTorch convention");
    }

    /** The PyTorch-layout state dict {@link #build} detects (kernels (cout, cin, 3, 3)), e.g. to write as a file. */
    public static Map<String, TensorData> stateDict(String name, long seed) {
        Map<String, TensorData> sd = new LinkedHashMap<>();
        Random r = new Random(seed);
        switch (name) {
            case "rrdbnet-x4", "rrdbnet-x4-6b" -> {
                int nf = 64, gc = 32, nb = name.endsWith("6b") ? 6 : 23;
                conv(sd, r, "conv_first", 3, nf);
                for (int b = 0; b < nb; b++)
                    for (int k = 1; k <= 3; k++)
                        for (int c = 1; c <= 5; c++) {
                            conv(sd, r, "body." + b + ".rdb" + k + ".conv" + c, nf + (c - 1) * gc, c == 5 ? nf : gc);
                        }
                for (String s : new String[] {"conv_body", "conv_up1", "conv_up2", "conv_hr"}) conv(sd, r, s, nf, nf);
                conv(sd, r, "conv_last", nf, 3);
            }
            case "srvgg-x4" -> {
                int nf = 64, i = 0;
                conv(sd, r, "body." + i++, 3, nf);
                for (int k = 0; k < 17; k++) {
                    sd.put("body." + i + ".weight", new TensorData("body." + i + ".weight", new int[] {nf}, fill(r, nf, 0.25f)));
                    i++;
                    if (k < 16) conv(sd, r, "body." + i++, nf, nf);
                }
                conv(sd, r, "body." + i, nf, 48);
            }
            default -> throw new IllegalArgumentException("unknown synthetic model '" + name + "'; known: " + NAMES);
        }
        return sd;
    }

    /** A PyTorch-layout (cout, cin, 3, 3) kernel with Kaiming-like scale, and a small bias. */
    private static void conv(Map<String, TensorData> sd, Random r, String name, int cin, int cout) {
        float std = (float) Math.sqrt(2.0 / (9 * cin)) * 0.5f;
        sd.put(name + ".weight", new TensorData(name + ".weight", new int[] {cout, cin, 3, 3}, gauss(r, cout * cin * 9, std)));
        sd.put(name + ".bias", new TensorData(name + ".bias", new int[] {cout}, gauss(r, cout, 0.01f)));
    }

    private static float[] gauss(Random r, int n, float std) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) f[i] = (float) (r.nextGaussian() * std);
        return f;
    }

    private static float[] fill(Random r, int n, float v) {
        float[] f = new float[n];
        java.util.Arrays.fill(f, v);
        return f;
    }
}
