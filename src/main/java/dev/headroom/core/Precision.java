package dev.headroom.core;

/** The element type tensors are computed in: fp32 everywhere, fp16 on GPUs (accumulating in fp32). */
public enum Precision {
    F32(4), F16(2);

    public final int bytes;

    Precision(int bytes) {
        this.bytes = bytes;
    }

    public static Precision parse(String s) {
        return switch (s.toLowerCase(java.util.Locale.ROOT)) {
            case "fp32", "f32", "float32" -> F32;
            case "fp16", "f16", "half", "float16" -> F16;
            default -> throw new IllegalArgumentException("precision '" + s + "': use fp32 or fp16");
        };
    }

    @Override
    public String toString() {
        return this == F32 ? "fp32" : "fp16";
    }
}
