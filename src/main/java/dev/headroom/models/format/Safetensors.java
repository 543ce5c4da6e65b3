package dev.headroom.models.format;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.headroom.core.TensorData;
import dev.headroom.models.ModelFormatException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * safetensors: an 8-byte little-endian header length, a JSON header mapping each tensor name to
 * {dtype, shape, data_offsets [begin, end)} relative to the end of the header, then the data.
 * The file is memory-mapped; every offset and size is checked against the file before a byte of
 * data is read, so a truncated or doctored file fails with the tensor's name. fp16 and bf16
 * tensors stay in the mapping ({@link TensorData.Halves}; it lives as long as they are reachable),
 * so they take no heap and go to a 16-bit device as they are; fp32 and fp64 are read into arrays.
 */
public final class Safetensors {
    private static final long MAX_HEADER = 100L << 20;

    private Safetensors() {}

    public static WeightFile read(Path file) {
        return read(file, name -> true);
    }

    /**
     * Only the tensors whose names {@code keep} accepts are read (the rest stay unread on disk):
     * the VAE of a whole single-file checkpoint without its UNet and text encoders. The result may
     * then be empty; a file whose header names no tensor at all is still an error.
     */
    public static WeightFile read(Path file, java.util.function.Predicate<String> keep) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8) throw new ModelFormatException(file, "safetensors file of " + size + " bytes is too short for its header length");
            // unmapped when no tensor refers to it any more (16-bit tensors keep slices of it)
            MemorySegment seg = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, Arena.ofAuto());
            long headerLen = seg.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
            if (headerLen <= 0 || headerLen > MAX_HEADER || 8 + headerLen > size) {
                throw new ModelFormatException(file, "safetensors header length " + headerLen + " does not fit a file of " + size + " bytes (truncated or not safetensors)");
            }
            byte[] hdr = seg.asSlice(8, headerLen).toArray(ValueLayout.JAVA_BYTE);
            JsonNode root;
            try {
                root = new ObjectMapper().readTree(new String(hdr, StandardCharsets.UTF_8));
            } catch (IOException e) {
                throw new ModelFormatException(file, "safetensors header is not valid JSON: " + e.getMessage().lines().findFirst().orElse(""));
            }
            if (root == null || !root.isObject()) throw new ModelFormatException(file, "safetensors header is not a JSON object");
            long dataStart = 8 + headerLen;
            long dataLen = size - dataStart;
            Map<String, TensorData> out = new LinkedHashMap<>();
            java.util.Set<String> types = new java.util.TreeSet<>();
            int named = 0;
            // bitsandbytes NF4 weights: several tensors each, assembled into one compact tensor
            java.util.Set<String> nf4 = new java.util.LinkedHashSet<>();
            for (Iterator<String> it = root.fieldNames(); it.hasNext(); ) {
                String n = it.next();
                if (n.endsWith(BitsandbytesNf4.STATE)) nf4.add(n.substring(0, n.length() - BitsandbytesNf4.STATE.length()));
            }
            for (String base : nf4) {
                if (!keep.test(base)) continue;
                out.put(base, BitsandbytesNf4.tensor(file, base, root, seg, dataStart));
                types.add("NF4");
            }
            for (Iterator<Map.Entry<String, JsonNode>> it = root.properties().iterator(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                String name = e.getKey();
                if (name.equals("__metadata__")) continue;
                named++;
                if (!keep.test(name) || BitsandbytesNf4.partOf(name, nf4)) continue;
                out.put(name, tensor(file, name, e.getValue(), seg, dataStart, dataLen));
                types.add(e.getValue().path("dtype").asText());
            }
            if (named == 0) throw new ModelFormatException(file, "safetensors file holds no tensors");
            return new WeightFile(out, types);
        } catch (IOException e) {
            throw new ModelFormatException(file, "cannot read: " + e.getMessage(), e);
        }
    }

    private static TensorData tensor(Path file, String name, JsonNode t, MemorySegment seg, long dataStart, long dataLen) {
        String dt = t.path("dtype").asText("");
        DType dtype = switch (dt) {
            case "F32" -> DType.F32;
            case "F16" -> DType.F16;
            case "BF16" -> DType.BF16;
            case "F64" -> DType.F64;
            default -> throw new ModelFormatException(file, "tensor '" + name + "' has dtype '" + dt + "'; supported: F32, F16, BF16, F64");
        };
        JsonNode shapeNode = t.path("shape");
        JsonNode offs = t.path("data_offsets");
        if (!shapeNode.isArray() || !offs.isArray() || offs.size() != 2) {
            throw new ModelFormatException(file, "tensor '" + name + "' lacks a shape or data_offsets");
        }
        int[] shape = new int[shapeNode.size()];
        long count = 1;
        for (int i = 0; i < shape.length; i++) {
            long d = shapeNode.get(i).asLong(-1);
            if (d < 0 || d > Integer.MAX_VALUE) throw new ModelFormatException(file, "tensor '" + name + "' has dimension " + shapeNode.get(i));
            shape[i] = (int) d;
            count *= d;
            if (count > Integer.MAX_VALUE) throw new ModelFormatException(file, "tensor '" + name + "' is too large for one host array");
        }
        long begin = offs.get(0).asLong(-1), end = offs.get(1).asLong(-1);
        if (begin < 0 || end < begin || end > dataLen) {
            throw new ModelFormatException(file, "tensor '" + name + "' spans bytes [" + begin + ", " + end + ") but the data section holds " + dataLen + " (truncated?)");
        }
        if (end - begin != count * dtype.bytes) {
            throw new ModelFormatException(file, "tensor '" + name + "' of shape " + shapeNode + " " + dt + " needs " + count * dtype.bytes + " bytes, its offsets give " + (end - begin));
        }
        if (dtype == DType.F16 || dtype == DType.BF16) return new TensorData(name, shape, dtype.halves(seg, dataStart + begin, count));
        return new TensorData(name, shape, dtype.toFloats(seg, dataStart + begin, (int) count));
    }
}
