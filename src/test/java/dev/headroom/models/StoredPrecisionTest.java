package dev.headroom.models;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.MapWeights;
import dev.headroom.core.Precision;
import dev.headroom.core.TensorData;
import dev.headroom.runtime.GraphRunner;
import dev.headroom.runtime.Tensor;
import dev.headroom.runtime.cpu.CpuOps;
import dev.headroom.testing.Randoms;
import dev.headroom.testing.SafetensorsFiles;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * fp16 and bf16 safetensors stay in their stored precision: memory-mapped, never widened in the
 * heap; the CPU widens a layer's kernel per call and gives the same output, bit for bit, as the
 * same values loaded in fp32, while its ledger holds half the weight bytes.
 */
class StoredPrecisionTest {
    @TempDir
    Path dir;

    @Test
    void sixteenBitFilesStaySixteenBitAndRunAsTheirWidenedValues() throws Exception {
        for (Precision p : new Precision[] {Precision.F16, Precision.BF16}) {
            Path file = dir.resolve("srvgg." + p + ".safetensors");
            SafetensorsFiles.write(file, SyntheticModels.stateDict("srvgg-x4", 5), p);
            Model m = ModelLoader.load(file);
            long params = m.weights().parameterCount();
            assertEquals(params * 2, m.weights().storedBytes(), "held as the file stores them: 2 bytes a value");
            for (String k : m.weights().names()) assertEquals(p, m.weights().get(k).stored(), k);

            // the same values, widened to fp32 up front
            Map<String, TensorData> wide = new LinkedHashMap<>();
            for (String k : m.weights().names()) wide.put(k, new TensorData(k, m.weights().get(k).shape(), m.weights().get(k).data()));
            Tensor in = Tensor.wrap(Randoms.floats(new Random(Randoms.seed()), 20 * 24 * 3, 0.3f), 1, 20, 24, 3);
            float[] narrow, widened;
            long narrowBytes, wideBytes;
            try (CpuOps ops = new CpuOps(); GraphRunner r = new GraphRunner(m.graph(), m.weights(), ops)) {
                narrow = r.run(in).data;
                narrowBytes = ops.memory().usedByCategory().get("weights");
            }
            try (CpuOps ops = new CpuOps(); GraphRunner r = new GraphRunner(m.graph(), new MapWeights(wide, "wide"), ops)) {
                widened = r.run(in).data;
                wideBytes = ops.memory().usedByCategory().get("weights");
            }
            assertArrayEquals(widened, narrow, p + ": widened per call, the same output");
            assertTrue(narrowBytes < 0.6 * wideBytes, p + " kernels charged " + narrowBytes + " against fp32's " + wideBytes);
        }
    }
}
