package dev.headroom.models.format;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.headroom.core.TensorData;
import dev.headroom.core.quant.Compact;
import dev.headroom.core.quant.Nf4;
import dev.headroom.models.ModelFormatException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Set;

/**
 * NF4 weights in a safetensors file as bitsandbytes saves them (Params4bit / QuantState.as_dict(packed=True)):
 * for a weight {@code W}, {@code W} holds the packed 4-bit codes (U8, two a byte, the first value
 * in the high nibble), {@code W.absmax} the absmax per block (F32; or U8 when double-quantized,
 * with {@code W.nested_absmax} F32 per block of nested_blocksize and {@code W.nested_quant_map}
 * the 256-entry code), {@code W.quant_map} the 16 NF4 values, and
 * {@code W.quant_state.bitsandbytes__nf4} a U8 tensor holding JSON: quant_type, blocksize, dtype,
 * shape (the weight's shape in PyTorch order), and when nested nested_blocksize, nested_dtype,
 * nested_offset. The result is one compact tensor of that shape ({@link Compact}, NF4).
 */
final class BitsandbytesNf4 {
    static final String STATE = ".quant_state.bitsandbytes__nf4";
    private static final String[] PARTS = {"", ".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map", STATE};
    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private BitsandbytesNf4() {}

    /** Whether {@code name} is one of the tensors that make up the NF4 weight {@code base}. */
    static boolean partOf(String name, Set<String> bases) {
        for (String p : PARTS) {
            if (name.endsWith(p) && bases.contains(name.substring(0, name.length() - p.length()))) return true;
        }
        return false;
    }

    static TensorData tensor(Path file, String base, JsonNode header, MemorySegment seg, long dataStart) {
        JsonNode state;
        try {
            byte[] json = raw(file, base + STATE, header, seg, dataStart, "U8", 1).toArray(ValueLayout.JAVA_BYTE);
            state = new ObjectMapper().readTree(new String(json, StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new ModelFormatException(file, "NF4 weight '" + base + "': its quant_state is not JSON: " + e.getMessage().lines().findFirst().orElse(""));
        }
        if (!"nf4".equals(state.path("quant_type").asText())) {
            throw new ModelFormatException(file, "weight '" + base + "' is quantized as '" + state.path("quant_type").asText() + "'; only nf4 is supported");
        }
        int blocksize = state.path("blocksize").asInt(-1);
        if (blocksize <= 0 || Integer.bitCount(blocksize) != 1) throw new ModelFormatException(file, "NF4 weight '" + base + "' has blocksize " + state.path("blocksize"));
        JsonNode shapeNode = state.path("shape");
        if (!shapeNode.isArray()) throw new ModelFormatException(file, "NF4 weight '" + base + "' has no shape in its quant_state");
        int[] shape = new int[shapeNode.size()];
        long count = 1;
        for (int i = 0; i < shape.length; i++) {
            long d = shapeNode.get(i).asLong(-1);
            if (d < 0 || d > Integer.MAX_VALUE) throw new ModelFormatException(file, "NF4 weight '" + base + "' has dimension " + shapeNode.get(i));
            shape[i] = (int) d;
            count *= d;
            if (count > Integer.MAX_VALUE) throw new ModelFormatException(file, "NF4 weight '" + base + "' is too large for one host array");
        }
        MemorySegment packed = raw(file, base, header, seg, dataStart, "U8", 1);
        if (packed.byteSize() != (count + 1) / 2) {
            throw new ModelFormatException(file, "NF4 weight '" + base + "' of shape " + shapeNode + " needs " + (count + 1) / 2 + " bytes of codes, has " + packed.byteSize());
        }
        long blocks = (count + blocksize - 1) / blocksize;
        float[] table = floats(raw(file, base + ".quant_map", header, seg, dataStart, "F32", 4));
        if (table.length != 16) throw new ModelFormatException(file, "NF4 weight '" + base + "' has a quant_map of " + table.length + " values, not 16");
        float[] absmax;
        if (header.has(base + ".nested_absmax")) {
            byte[] q = raw(file, base + ".absmax", header, seg, dataStart, "U8", 1).toArray(ValueLayout.JAVA_BYTE);
            float[] nested = floats(raw(file, base + ".nested_absmax", header, seg, dataStart, "F32", 4));
            float[] code = floats(raw(file, base + ".nested_quant_map", header, seg, dataStart, "F32", 4));
            int nb = state.path("nested_blocksize").asInt(-1);
            if (code.length != 256 || nb <= 0 || (q.length + nb - 1) / nb != nested.length) {
                throw new ModelFormatException(file, "NF4 weight '" + base + "': nested absmax of " + q.length + " codes, " + nested.length
                        + " scales, blocksize " + nb + " and a code of " + code.length + " values do not fit together");
            }
            absmax = Nf4.nestedAbsmax(q, code, nested, nb, (float) state.path("nested_offset").asDouble(0));
        } else {
            absmax = floats(raw(file, base + ".absmax", header, seg, dataStart, "F32", 4));
        }
        if (absmax.length != blocks) throw new ModelFormatException(file, "NF4 weight '" + base + "' has " + absmax.length + " absmax values for " + blocks + " blocks");
        return new TensorData(base, shape, new Compact(Compact.Scheme.NF4, count, packed.toArray(ValueLayout.JAVA_BYTE), absmax, table, 0, blocksize));
    }

    private static float[] floats(MemorySegment s) {
        float[] f = new float[(int) (s.byteSize() / 4)];
        MemorySegment.copy(s, F32_LE, 0, f, 0, f.length);
        return f;
    }

    /** The bytes of tensor {@code name}, checked: present, of {@code dtype}, inside the data section. */
    private static MemorySegment raw(Path file, String name, JsonNode header, MemorySegment seg, long dataStart, String dtype, int elem) {
        JsonNode t = header.get(name);
        if (t == null) throw new ModelFormatException(file, "NF4 weight needs tensor '" + name + "', which the file does not have");
        if (!dtype.equals(t.path("dtype").asText())) throw new ModelFormatException(file, "tensor '" + name + "' has dtype '" + t.path("dtype").asText() + "', expected " + dtype);
        JsonNode offs = t.path("data_offsets");
        long begin = offs.path(0).asLong(-1), end = offs.path(1).asLong(-1), dataLen = seg.byteSize() - dataStart;
        if (begin < 0 || end < begin || end > dataLen || (end - begin) % elem != 0) {
            throw new ModelFormatException(file, "tensor '" + name + "' spans bytes [" + begin + ", " + end + ") but the data section holds " + dataLen + " (truncated?)");
        }
        return seg.asSlice(dataStart + begin, end - begin);
    }
}
