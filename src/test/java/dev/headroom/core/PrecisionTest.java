package dev.headroom.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** The host side of 16-bit storage: what the GPU kernels' loads and stores must agree with. */
class PrecisionTest {

    @Test
    void bf16RoundsToNearestEvenAndKeepsFp32sRange() {
        Precision b = Precision.BF16;
        assertEquals(1f, b.fromBits(b.toBits(1f)));
        assertEquals(3e38f, b.fromBits(b.toBits(3e38f)), 3e38f / 128, "bf16 keeps fp32's range, fp16 would overflow");
        assertEquals(Float.POSITIVE_INFINITY, Precision.F16.fromBits(Precision.F16.toBits(3e38f)));
        // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even mantissa, 1
        assertEquals(1f, b.fromBits(b.toBits(1f + 0x1p-8f)));
        // 1 + 3 * 2^-8 lies halfway between 1 + 2^-7 and 1 + 2^-6: ties go to 1 + 2^-6
        assertEquals(1f + 0x1p-6f, b.fromBits(b.toBits(1f + 3 * 0x1p-8f)));
        assertTrue(Float.isNaN(b.fromBits(b.toBits(Float.NaN))));
        assertEquals(Float.NEGATIVE_INFINITY, b.fromBits(b.toBits(Float.NEGATIVE_INFINITY)));
        Random r = new Random(7);
        for (int i = 0; i < 100_000; i++) {
            float v = (float) (r.nextGaussian() * Math.pow(10, r.nextInt(20) - 10));
            float back = b.fromBits(b.toBits(v));
            assertTrue(Math.abs(back - v) <= Math.ulp(v) * 65536 / 2, v + " -> " + back + ": more than half a bf16 ulp away");
            assertEquals(back, b.fromBits(b.toBits(back)), "a bf16 value is kept exactly");
        }
    }

    @Test
    void namesParseBothWays() {
        for (Precision p : Precision.values()) assertEquals(p, Precision.parse(p.toString()));
        assertEquals(Precision.BF16, Precision.parse("bfloat16"));
        var e = assertThrows(IllegalArgumentException.class, () -> Precision.parse("fp8"));
        assertTrue(e.getMessage().contains("bf16"), e.getMessage());
        assertThrows(IllegalStateException.class, () -> Precision.F32.toBits(1f));
    }
}
