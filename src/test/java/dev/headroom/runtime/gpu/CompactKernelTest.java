package dev.headroom.runtime.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.TensorData;
import dev.headroom.core.graph.Act;
import dev.headroom.core.graph.Op;
import dev.headroom.core.graph.Padding;
import dev.headroom.core.quant.Compact;
import dev.headroom.core.quant.Fp8;
import dev.headroom.core.quant.Nf4;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The device blob of a compact kernel, read back on the host as expand.cu reads it (no GPU
 * needed): codes, scales and table at their offsets, and every value, decoded from the blob the
 * kernel's way, equal to the host expansion's.
 */
class CompactKernelTest {

    @Test
    void theBlobDecodesAsTheHostExpands() {
        Random r = new Random(4);
        int k = 3, ci = 5, co = 7, n = k * k * ci * co;
        Op.Conv2d op = new Op.Conv2d("w", "b", k, k, ci, co, Padding.SAME, Act.NONE, 0f, 0f);
        float[] w = new float[n];
        for (int i = 0; i < n; i++) w[i] = (float) r.nextGaussian();
        TensorData[] kernels = {
                new TensorData("w", new int[] {k, k, ci, co}, Compact.int8(w, co)),
                new TensorData("w", new int[] {k, k, ci, co}, Compact.fp8(w, co)),
                new TensorData("w", new int[] {k, k, ci, co}, Compact.nf4(w, 64)),
                new TensorData("w", new int[] {co, ci, k, k}, Compact.nf4(w, 64)).oihwToHwio()};
        for (TensorData t : kernels) {
            CompactKernel layout = CompactKernel.of(op, t);
            MemorySegment blob = layout.blob();
            assertEquals(layout.bytes(), blob.byteSize());
            assertEquals(0, layout.scalesAt() % 256);
            assertEquals(0, layout.tableAt() % 256);
            assertTrue(layout.scalesAt() >= t.compact().codes().length);
            float[] expected = t.data();   // (kh, kw, cin, cout)
            for (int y = 0; y < k; y++)
                for (int x = 0; x < k; x++)
                    for (int i = 0; i < ci; i++)
                        for (int o = 0; o < co; o++) {
                            int s = layout.oihw() ? ((o * ci + i) * k + y) * k + x : ((y * k + x) * ci + i) * co + o;
                            float v = switch (layout.scheme()) {
                                case 0 -> blob.get(ValueLayout.JAVA_BYTE, s) * scale(blob, layout, s % layout.channels());
                                case 1 -> table(blob, layout, blob.get(ValueLayout.JAVA_BYTE, s) & 0xff) * scale(blob, layout, s % layout.channels());
                                default -> {
                                    int b = blob.get(ValueLayout.JAVA_BYTE, s >> 1) & 0xff;
                                    yield table(blob, layout, (s & 1) == 1 ? b & 15 : b >> 4) * scale(blob, layout, s / layout.blocksize());
                                }
                            };
                            assertEquals(Float.floatToIntBits(expected[((y * k + x) * ci + i) * co + o]), Float.floatToIntBits(v), t + " at " + s);
                        }
            if (layout.scheme() == 1) assertEquals(Fp8.decode((byte) 0x7e), table(blob, layout, 0x7e));
            if (layout.scheme() == 2) assertEquals(Nf4.TABLE[3], table(blob, layout, 3));
        }
    }

    private static float scale(MemorySegment blob, CompactKernel l, int i) {
        return blob.get(ValueLayout.JAVA_FLOAT_UNALIGNED, l.scalesAt() + 4L * i);
    }

    private static float table(MemorySegment blob, CompactKernel l, int i) {
        return blob.get(ValueLayout.JAVA_FLOAT_UNALIGNED, l.tableAt() + 4L * i);
    }
}
