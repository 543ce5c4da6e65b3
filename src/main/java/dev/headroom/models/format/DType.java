package dev.headroom.models.format;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** Stored element types of weight files, and their conversion to fp32 (little-endian). */
public enum DType {
    F32(4), F16(2), BF16(2), F64(8);

    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64_LE = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    public final int bytes;

    DType(int bytes) {
        this.bytes = bytes;
    }

    /** Reads {@code count} values starting at byte {@code offset} as floats. */
    public float[] toFloats(MemorySegment seg, long offset, int count) {
        float[] out = new float[count];
        switch (this) {
            case F32 -> MemorySegment.copy(seg, F32_LE, offset, out, 0, count);
            case F16 -> { for (int i = 0; i < count; i++) out[i] = Float.float16ToFloat(seg.get(I16_LE, offset + 2L * i)); }
            case BF16 -> { for (int i = 0; i < count; i++) out[i] = Float.intBitsToFloat((seg.get(I16_LE, offset + 2L * i) & 0xffff) << 16); }
            case F64 -> { for (int i = 0; i < count; i++) out[i] = (float) seg.get(F64_LE, offset + 8L * i); }
        }
        return out;
    }
}
