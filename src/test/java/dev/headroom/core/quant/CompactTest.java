package dev.headroom.core.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.testing.Randoms;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Compact weights: fast expansion against the slow reference on fresh random inputs, fp8 against its definition, NF4 as bitsandbytes lays it out. */
class CompactTest {
    private final Random r = new Random(Randoms.seed());

    @Test
    void fastExpansionEqualsTheReferenceForEveryScheme() {
        for (int trial = 0; trial < 50; trial++) {
            int channels = 1 + r.nextInt(70), rows = 1 + r.nextInt(40);
            float[] w = Randoms.floats(r, channels * rows, 0.05f + r.nextFloat());
            if (trial % 7 == 0) java.util.Arrays.fill(w, 0, channels, 0f);   // a row of zeros
            for (Compact c : new Compact[] {Compact.int8(w, channels), Compact.fp8(w, channels), Compact.nf4(w, 64), Compact.nf4(w, 32)}) {
                assertArrayEquals(c.expandReference(), c.expand(), c.scheme() + " " + rows + "x" + channels);
            }
        }
    }

    @Test
    void quantizationErrorStaysWithinEachSchemesStep() {
        float[] w = Randoms.floats(r, 64 * 48, 0.2f);
        float[] channelMax = new float[48];
        for (int i = 0; i < w.length; i++) channelMax[i % 48] = Math.max(channelMax[i % 48], Math.abs(w[i]));
        float[] i8 = Compact.int8(w, 48).expand(), f8 = Compact.fp8(w, 48).expand();
        for (int i = 0; i < w.length; i++) {
            float m = channelMax[i % 48];
            assertTrue(Math.abs(i8[i] - w[i]) <= m / 127 / 2 * 1.0001f, "int8: half a step of max/127");
            // e4m3 has 3 mantissa bits: relative error at most 2^-4, or half the subnormal step (2^-10 of the scale) near zero
            assertTrue(Math.abs(f8[i] - w[i]) <= Math.max(Math.abs(w[i]) / 16, m / Fp8.MAX * 0x1p-10f) * 1.0001f, "fp8 at " + w[i]);
        }
    }

    @Test
    void fp8EncodingIsTheNearestCodeTiesToEven() {
        for (int c = 0; c < 256; c++) {
            float v = Fp8.decodeReference((byte) c);
            if (Float.isNaN(v)) continue;
            assertEquals(v, Fp8.decode(Fp8.encode(v)), "code " + c + " round-trips");
        }
        for (int i = 0; i < 20000; i++) {
            float x = (float) (r.nextGaussian() * Math.pow(2, r.nextInt(24) - 14));
            assertEquals(Fp8.encodeReference(x), Fp8.encode(x), "encode " + x);
        }
        // halfway between 1.0 (m=0) and 1.125 (m=1): to the even mantissa; beyond 448: saturated
        assertEquals(Fp8.encode(1.0f), Fp8.encode(1.0625f));
        assertEquals(Fp8.encode(1.25f), Fp8.encode(1.1875f));
        assertEquals(448f, Fp8.decode(Fp8.encode(1e6f)));
        assertEquals(-448f, Fp8.decode(Fp8.encode(-500f)));
        assertEquals(0x1p-9f, Fp8.decode((byte) 1), "smallest subnormal");
    }

    @Test
    void nf4PacksTheFirstValueInTheHighNibbleAndTakesTheNearestEntry() {
        assertEquals(16, Nf4.TABLE.length);
        for (int i = 1; i < 16; i++) assertTrue(Nf4.TABLE[i - 1] < Nf4.TABLE[i], "sorted");
        assertEquals(0f, Nf4.TABLE[7]);
        // a block [-1, 1] * 3: absmax 3, codes 0 and 15, packed 0x0F
        Compact c = Compact.nf4(new float[] {-3f, 3f}, 64);
        assertEquals((byte) 0x0f, c.codes()[0]);
        assertEquals(3f, c.scales()[0]);
        // every table entry times the block's absmax comes back as itself
        float[] w = new float[16];
        for (int i = 0; i < 16; i++) w[i] = Nf4.TABLE[i] * 0.5f;
        assertArrayEquals(w, Compact.nf4(w, 64).expand());
        // exactly on a midpoint: the lower entry (torch.bucketize, right=False)
        float mid = (Nf4.TABLE[8] + Nf4.TABLE[9]) / 2;
        Compact m = Compact.nf4(new float[] {mid, 1f}, 64);
        assertEquals(8, (m.codes()[0] & 0xff) >> 4);
        // an odd count: the last byte's low nibble is padding
        assertEquals(2, Compact.nf4(new float[] {0.1f, 0.2f, 0.3f}, 64).codes().length);
    }
}
