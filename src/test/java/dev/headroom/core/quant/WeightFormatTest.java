package dev.headroom.core.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.headroom.core.MapWeights;
import dev.headroom.core.Precision;
import dev.headroom.core.TensorData;
import dev.headroom.core.Weights;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * --weights on a model's kernels: compact formats hold thin kernels (fewer than 16 channels in or
 * out) and kernels outside the repeated blocks (a shape fewer than 5 kernels share) in fp16, the
 * rest compact; biases stay fp32.
 */
class WeightFormatTest {
    @Test
    void thinKernelsAndThoseOutsideRepeatedBlocksStayFp16AndTheRestGoCompact() {
        Random r = new Random(3);
        Map<String, TensorData> m = new LinkedHashMap<>();
        // a block of (3,3,64,64) repeated 5 times; a head and tail of shapes fewer kernels share
        int[][] shapes = {{3, 3, 3, 64}, {3, 3, 64, 64}, {3, 3, 64, 64}, {3, 3, 64, 64}, {3, 3, 64, 64}, {3, 3, 64, 64}, {3, 3, 32, 12},
                {1, 1, 16, 16}, {1, 1, 16, 16}, {3, 3, 64, 15}, {5, 5, 64, 64}};
        boolean[] keep = {true, false, false, false, false, false, true, true, true, true, true};
        for (int i = 0; i < shapes.length; i++) m.put("k" + i, tensor("k" + i, shapes[i], r));
        m.put("bias", tensor("bias", new int[] {64}, r));
        Weights w = new MapWeights(m, "test");
        for (WeightFormat f : new WeightFormat[] {WeightFormat.INT8, WeightFormat.FP8, WeightFormat.NF4}) {
            Weights q = f.apply(w);
            for (int i = 0; i < shapes.length; i++) {
                TensorData t = q.get("k" + i);
                if (keep[i]) {
                    assertNull(t.compact(), f + " k" + i);
                    assertEquals(Precision.F16, t.stored(), f + ": kernel k" + i + " " + java.util.Arrays.toString(shapes[i]) + " held in fp16");
                } else {
                    assertNotNull(t.compact(), f + ": k" + i + " held compact");
                }
            }
            assertEquals(Precision.F32, q.get("bias").stored());
        }
        assertEquals(Precision.BF16, WeightFormat.BF16.apply(w).get("k0").stored(), "bf16 is not compact: thin kernels become bf16 like the rest");
    }

    private static TensorData tensor(String name, int[] shape, Random r) {
        int n = 1;
        for (int d : shape) n *= d;
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) r.nextGaussian();
        return new TensorData(name, shape, v);
    }
}
