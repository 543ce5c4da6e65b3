package dev.headroom.testing;

import dev.headroom.core.Precision;
import dev.headroom.core.TensorData;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/** Writes a state dict as a safetensors file (8-byte header length, JSON header, little-endian data) in F32, F16 or BF16. */
public final class SafetensorsFiles {
    private SafetensorsFiles() {}

    /** One tensor's raw little-endian bytes, for files of any dtype (U8, F32, ...). */
    public record Raw(String dtype, long[] shape, byte[] bytes) {}

    /** Writes raw tensors in order: for layouts such as bitsandbytes' NF4 (U8 codes, F32 absmax, U8 JSON). */
    public static void writeRaw(Path file, Map<String, Raw> tensors) throws IOException {
        StringBuilder h = new StringBuilder("{");
        long offset = 0;
        for (Map.Entry<String, Raw> e : tensors.entrySet()) {
            if (h.length() > 1) h.append(',');
            h.append('"').append(e.getKey()).append("\":{\"dtype\":\"").append(e.getValue().dtype()).append("\",\"shape\":")
                    .append(java.util.Arrays.toString(e.getValue().shape()).replace(" ", "")).append(",\"data_offsets\":[").append(offset).append(',')
                    .append(offset + e.getValue().bytes().length).append("]}");
            offset += e.getValue().bytes().length;
        }
        byte[] header = h.append('}').toString().getBytes(StandardCharsets.UTF_8);
        try (OutputStream out = new java.io.BufferedOutputStream(Files.newOutputStream(file), 1 << 20)) {
            out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(header.length).array());
            out.write(header);
            for (Raw r : tensors.values()) out.write(r.bytes());
        }
    }

    public static byte[] floatsLe(float[] f) {
        ByteBuffer b = ByteBuffer.allocate(f.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : f) b.putFloat(v);
        return b.array();
    }

    public static void write(Path file, Map<String, TensorData> tensors, Precision as) throws IOException {
        String dtype = switch (as) {
            case F32 -> "F32";
            case F16 -> "F16";
            case BF16 -> "BF16";
        };
        StringBuilder h = new StringBuilder("{");
        long offset = 0;
        for (TensorData t : tensors.values()) {
            long bytes = t.count() * as.bytes;
            if (h.length() > 1) h.append(',');
            h.append('"').append(t.name()).append("\":{\"dtype\":\"").append(dtype).append("\",\"shape\":")
                    .append(java.util.Arrays.toString(t.shape()).replace(" ", "")).append(",\"data_offsets\":[").append(offset).append(',')
                    .append(offset + bytes).append("]}");
            offset += bytes;
        }
        byte[] header = h.append('}').toString().getBytes(StandardCharsets.UTF_8);
        try (OutputStream out = new java.io.BufferedOutputStream(Files.newOutputStream(file), 1 << 20)) {
            out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(header.length).array());
            out.write(header);
            for (TensorData t : tensors.values()) {
                ByteBuffer b = ByteBuffer.allocate((int) t.count() * as.bytes).order(ByteOrder.LITTLE_ENDIAN);
                for (float v : t.data()) {
                    if (as == Precision.F32) b.putFloat(v);
                    else b.putShort(as.toBits(v));
                }
                out.write(b.array());
            }
        }
    }
}
