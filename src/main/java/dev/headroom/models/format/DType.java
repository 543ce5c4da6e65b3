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

    /** {@code count} 16-bit values (F16 or BF16) at byte {@code offset} of {@code seg}, left where they are. */
    public dev.headroom.core.TensorData.Halves halves(MemorySegment seg, long offset, long count) {
        if (bytes != 2) throw new IllegalStateException(this + " is not a 16-bit type");
        dev.headroom.core.Precision p = this == F16 ? dev.headroom.core.Precision.F16 : dev.headroom.core.Precision.BF16;
        MemorySegment slice = seg.asSlice(offset, count * 2);
        return new dev.headroom.core.TensorData.Halves() {
            public dev.headroom.core.Precision precision() { return p; }
            public long count() { return count; }
            public void copy(long from, short[] dst, int at, int n) { MemorySegment.copy(slice, I16_LE, from * 2, dst, at, n); }
        };
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
