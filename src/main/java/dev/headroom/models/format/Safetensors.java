package dev.headroom.models.format;

import com.fasterxml.jackson.databind.JsonNode;
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
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
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
    private static final long MAX_HEADER = 16L << 20;   // SDXL's is 0.2 MiB

    private Safetensors() {}

    public static WeightFile read(Path file) {
        return read(file, name -> true, names -> { });
    }

    /**
     * Only the tensors whose names {@code keep} accepts are read (the rest stay unread on disk):
     * the VAE of a whole single-file checkpoint without its UNet and text encoders. The result may
     * then be empty; a file whose header names no tensor at all is still an error.
     */
    public static WeightFile read(Path file, java.util.function.Predicate<String> keep) {
        return read(file, keep, names -> { });
    }

    /**
     * Reads the tensors {@code keep} accepts; {@code namesCheck} sees their names after the header
     * was checked and before any tensor's data is read (architecture detection refuses an unknown
     * model there).
     */
    public static WeightFile read(Path file, java.util.function.Predicate<String> keep, java.util.function.Consumer<java.util.Set<String>> namesCheck) {
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
                root = Json.MAPPER.readTree(new String(hdr, StandardCharsets.UTF_8));
            } catch (IOException e) {
                throw new ModelFormatException(file, "safetensors header is not valid JSON: " + e.getMessage().lines().findFirst().orElse(""));
            }
            if (root == null || !root.isObject()) throw new ModelFormatException(file, "safetensors header is not a JSON object");
            long dataStart = 8 + headerLen;
            long dataLen = size - dataStart;
            Map<String, Entry> entries = new LinkedHashMap<>();
            java.util.Set<String> types = new java.util.TreeSet<>();
            int named = 0;
            // bitsandbytes NF4 weights: several tensors each, assembled into one compact tensor
            java.util.Set<String> nf4 = new java.util.LinkedHashSet<>();
            for (Iterator<String> it = root.fieldNames(); it.hasNext(); ) {
                String n = it.next();
                if (n.endsWith(BitsandbytesNf4.STATE)) nf4.add(n.substring(0, n.length() - BitsandbytesNf4.STATE.length()));
            }
            nf4.removeIf(keep.negate());
            if (!nf4.isEmpty()) types.add("NF4");
            for (Iterator<Map.Entry<String, JsonNode>> it = root.properties().iterator(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                String name = e.getKey();
                if (name.equals("__metadata__")) continue;
                named++;
                if (!keep.test(name) || BitsandbytesNf4.partOf(name, nf4)) continue;
                entries.put(name, entry(file, name, e.getValue(), dataLen));
                types.add(e.getValue().path("dtype").asText());
            }
            if (named == 0) throw new ModelFormatException(file, "safetensors file holds no tensors");
            refuseOverlaps(file, entries);
            java.util.Set<String> names = new java.util.LinkedHashSet<>(nf4);
            names.addAll(entries.keySet());
            namesCheck.accept(java.util.Collections.unmodifiableSet(names));
            Map<String, TensorData> out = new LinkedHashMap<>();
            for (String base : nf4) out.put(base, BitsandbytesNf4.tensor(file, base, root, seg, dataStart));
            for (Entry t : entries.values()) {
                out.put(t.name, t.dtype == DType.F16 || t.dtype == DType.BF16
                        ? new TensorData(t.name, t.shape, t.dtype.halves(seg, dataStart + t.begin, t.count))
                        : new TensorData(t.name, t.shape, t.dtype.toFloats(seg, dataStart + t.begin, (int) t.count)));
            }
            return new WeightFile(out, types);
        } catch (IOException e) {
            throw new ModelFormatException(file, "cannot read: " + e.getMessage(), e);
        }
    }

    /** A tensor as the header declares it: checked against the file, no data read yet. */
    private record Entry(String name, DType dtype, int[] shape, long count, long begin, long end) {}

    private static Entry entry(Path file, String name, JsonNode t, long dataLen) {
        if (!t.isObject()) throw new ModelFormatException(file, "tensor '" + name + "' is not described by an object");
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
        if (!shapeNode.isArray() || !offs.isArray() || offs.size() != 2 || shapeNode.size() > 8) {
            throw new ModelFormatException(file, "tensor '" + name + "' lacks a shape (of at most 8 dimensions) or data_offsets");
        }
        int[] shape = new int[shapeNode.size()];
        long count = 1;
        for (int i = 0; i < shape.length; i++) {
            long d = shapeNode.get(i).canConvertToLong() && shapeNode.get(i).isIntegralNumber() ? shapeNode.get(i).asLong() : -1;
            if (d < 0 || d > Integer.MAX_VALUE) throw new ModelFormatException(file, "tensor '" + name + "' has dimension " + shapeNode.get(i));
            shape[i] = (int) d;
            count *= d;
            if (count > Integer.MAX_VALUE) throw new ModelFormatException(file, "tensor '" + name + "' is too large for one host array");
        }
        long begin = offs.get(0).isIntegralNumber() ? offs.get(0).asLong(-1) : -1, end = offs.get(1).isIntegralNumber() ? offs.get(1).asLong(-1) : -1;
        if (begin < 0 || end < begin || end > dataLen) {
            throw new ModelFormatException(file, "tensor '" + name + "' spans bytes [" + begin + ", " + end + ") but the data section holds " + dataLen + " (truncated?)");
        }
        if (end - begin != count * dtype.bytes) {
            throw new ModelFormatException(file, "tensor '" + name + "' of shape " + shapeNode + " " + dt + " needs " + count * dtype.bytes + " bytes, its offsets give " + (end - begin));
        }
        return new Entry(name, dtype, shape, count, begin, end);
    }

    /**
     * Tensors may not share bytes (the format's own rule): thousands of tensors over the same bytes
     * would otherwise each be converted, turning a small file into gigabytes of host memory.
     */
    private static void refuseOverlaps(Path file, Map<String, Entry> entries) {
        List<Entry> byStart = new ArrayList<>(entries.values());
        byStart.removeIf(e -> e.begin == e.end);
        byStart.sort(java.util.Comparator.comparingLong(Entry::begin));
        for (int i = 1; i < byStart.size(); i++) {
            Entry a = byStart.get(i - 1), b = byStart.get(i);
            if (b.begin < a.end) {
                throw new ModelFormatException(file, "tensors '" + a.name + "' and '" + b.name + "' share bytes [" + b.begin + ", " + Math.min(a.end, b.end)
                        + "); safetensors tensors may not overlap (damaged or doctored file)");
            }
        }
    }
}
