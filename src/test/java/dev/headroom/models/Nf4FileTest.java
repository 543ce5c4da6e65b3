package dev.headroom.models;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.headroom.core.MapWeights;
import dev.headroom.core.TensorData;
import dev.headroom.core.quant.Compact;
import dev.headroom.runtime.GraphRunner;
import dev.headroom.runtime.Tensor;
import dev.headroom.runtime.cpu.CpuOps;
import dev.headroom.testing.Randoms;
import dev.headroom.testing.SafetensorsFiles;
import dev.headroom.testing.SafetensorsFiles.Raw;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A safetensors file with NF4 kernels laid out as bitsandbytes saves them (packed codes, absmax,
 * quant_map, the quant_state JSON; plain and double-quantized absmax) loads as compact tensors and
 * runs on the CPU to the same output, bit for bit, as the values it encodes expanded by hand.
 */
class Nf4FileTest {
    @TempDir
    Path dir;

    @Test
    void bitsandbytesNf4FilesLoadAndRunAsTheValuesTheyEncode() throws Exception {
        for (boolean nested : new boolean[] {false, true}) {
            Map<String, TensorData> sd = SyntheticModels.stateDict("srvgg-x4", 9);
            Map<String, Raw> file = new LinkedHashMap<>();
            Map<String, TensorData> expected = new LinkedHashMap<>();   // PyTorch layout, the values the file encodes
            Random r = new Random(Randoms.seed());
            for (TensorData t : sd.values()) {
                if (t.rank() != 4) {
                    file.put(t.name(), new Raw("F32", longs(t.shape()), SafetensorsFiles.floatsLe(t.data())));
                    expected.put(t.name(), t);
                    continue;
                }
                Compact q = Compact.nf4(t.data(), 64);
                float[] absmax = q.scales();
                String json;
                file.put(t.name(), new Raw("U8", new long[] {q.codes().length, 1}, q.codes()));
                if (nested) {
                    // absmax 8-bit against a 256-entry code in blocks of 256, offset by its mean, as compress_statistics does
                    float offset = 0;
                    for (float a : absmax) offset += a / absmax.length;
                    float[] code = new float[256];
                    for (int i = 0; i < 256; i++) code[i] = -1f + 2f * i / 255f;
                    int nb = 256, blocks = (absmax.length + nb - 1) / nb;
                    float[] scale = new float[blocks];
                    for (int i = 0; i < absmax.length; i++) scale[i / nb] = Math.max(scale[i / nb], Math.abs(absmax[i] - offset));
                    byte[] qa = new byte[absmax.length];
                    float[] decoded = new float[absmax.length];
                    for (int i = 0; i < absmax.length; i++) {
                        float s = scale[i / nb] == 0 ? 1 : scale[i / nb];
                        int c = Math.round(((absmax[i] - offset) / s + 1f) * 127.5f);
                        qa[i] = (byte) Math.max(0, Math.min(255, c));
                        decoded[i] = code[qa[i] & 0xff] * scale[i / nb] + offset;
                    }
                    file.put(t.name() + ".absmax", new Raw("U8", new long[] {qa.length}, qa));
                    file.put(t.name() + ".nested_absmax", new Raw("F32", new long[] {blocks}, SafetensorsFiles.floatsLe(scale)));
                    file.put(t.name() + ".nested_quant_map", new Raw("F32", new long[] {256}, SafetensorsFiles.floatsLe(code)));
                    json = "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": " + java.util.Arrays.toString(t.shape())
                            + ", \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": " + offset + "}";
                    absmax = decoded;
                } else {
                    file.put(t.name() + ".absmax", new Raw("F32", new long[] {absmax.length}, SafetensorsFiles.floatsLe(absmax)));
                    json = "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float16\", \"shape\": " + java.util.Arrays.toString(t.shape()) + "}";
                }
                file.put(t.name() + ".quant_map", new Raw("F32", new long[] {16}, SafetensorsFiles.floatsLe(q.table())));
                byte[] js = json.getBytes(StandardCharsets.UTF_8);
                file.put(t.name() + ".quant_state.bitsandbytes__nf4", new Raw("U8", new long[] {js.length}, js));
                Compact stored = new Compact(Compact.Scheme.NF4, q.count(), q.codes(), absmax, q.table(), 0, 64);
                expected.put(t.name(), new TensorData(t.name(), t.shape(), stored.expandReference()));
            }
            Path f = dir.resolve("srvgg-nf4" + (nested ? "-nested" : "") + ".safetensors");
            SafetensorsFiles.writeRaw(f, file);
            Model m = ModelLoader.load(f);
            TensorData k = m.weights().get("body.0.weight");
            assertNotNull(k.compact(), "kernels stay NF4");
            assertEquals(Compact.Scheme.NF4, k.compact().scheme());

            var want = dev.headroom.models.arch.TorchArchitectures.detect(expected);
            Tensor in = Tensor.wrap(Randoms.floats(r, 16 * 20 * 3, 0.3f), 1, 16, 20, 3);
            float[] got, ref;
            try (CpuOps ops = new CpuOps(); GraphRunner run = new GraphRunner(m.graph(), m.weights(), ops)) {
                got = run.run(in).data;
            }
            try (CpuOps ops = new CpuOps(); GraphRunner run = new GraphRunner(want.graph(), new MapWeights(want.weights(), "expanded"), ops)) {
                ref = run.run(in).data;
            }
            assertArrayEquals(ref, got, (nested ? "double-quantized" : "plain") + " NF4 file against its values expanded by hand");
        }
    }

    @Test
    void anNf4WeightMissingItsAbsmaxIsRefusedByName() throws Exception {
        byte[] js = "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float16\", \"shape\": [4, 3, 3, 3]}".getBytes(StandardCharsets.UTF_8);
        Map<String, Raw> file = new LinkedHashMap<>();
        file.put("body.0.weight", new Raw("U8", new long[] {54, 1}, new byte[54]));
        file.put("body.0.weight.quant_map", new Raw("F32", new long[] {16}, SafetensorsFiles.floatsLe(new float[16])));
        file.put("body.0.weight.quant_state.bitsandbytes__nf4", new Raw("U8", new long[] {js.length}, js));
        Path f = dir.resolve("broken.safetensors");
        SafetensorsFiles.writeRaw(f, file);
        var e = assertThrows(ModelFormatException.class, () -> ModelLoader.load(f));
        assertEquals(true, e.getMessage().contains("body.0.weight.absmax"), e.getMessage());
    }

    private static long[] longs(int[] s) {
        long[] l = new long[s.length];
        for (int i = 0; i < s.length; i++) l[i] = s[i];
        return l;
    }
}
