package dev.headroom.core;

/**
 * The element type tensors are stored in: fp32 everywhere; fp16 and bf16 on GPUs, where arithmetic
 * stays fp32 (convolutions accumulate in fp32, elementwise kernels convert on load and store).
 * bf16 keeps fp32's range with 8 bits of mantissa, fp16 has 11 bits and a range up to 65504.
 */
public enum Precision {
    F32(4), F16(2), BF16(2);

    public final int bytes;

    Precision(int bytes) {
        this.bytes = bytes;
    }

    public static Precision parse(String s) {
        return switch (s.toLowerCase(java.util.Locale.ROOT)) {
            case "fp32", "f32", "float32" -> F32;
            case "fp16", "f16", "half", "float16" -> F16;
            case "bf16", "bfloat16" -> BF16;
            default -> throw new IllegalArgumentException("precision '" + s + "': use fp32, fp16 or bf16");
        };
    }

    @Override
    public String toString() {
        return switch (this) {
            case F32 -> "fp32";
            case F16 -> "fp16";
            case BF16 -> "bf16";
        };
    }

    /** The 16-bit pattern of {@code v} in this 2-byte precision (rounded to nearest even). */
    public short toBits(float v) {
        if (this == F16) return Float.floatToFloat16(v);
        if (this != BF16) throw new IllegalStateException(this + " is not a 16-bit type");
        int b = Float.floatToRawIntBits(v);
        if (Float.isNaN(v)) return (short) ((b >>> 16) | 0x40);     // stay a NaN
        return (short) ((b + 0x7FFF + ((b >>> 16) & 1)) >>> 16);
    }

    /** The value of a 16-bit pattern of this precision. */
    public float fromBits(short bits) {
        if (this == F16) return Float.float16ToFloat(bits);
        if (this != BF16) throw new IllegalStateException(this + " is not a 16-bit type");
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }
}
