package dev.headroom.models.format;

import com.fasterxml.jackson.databind.JsonNode;
import dev.headroom.core.TensorData;
import dev.headroom.models.ModelFormatException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * TensorFlow.js layers models: {@code model.json} holds the Keras topology and a weights manifest;
 * the weights are the manifest's shards concatenated, little-endian, in manifest order. Plain
 * float32 and the converter's quantisations (uint8/uint16 affine: q * scale + min; float16) are
 * read. Shard paths must be plain file names beside model.json.
 */
public final class TfjsLayersModel {
    private static final long MAX_JSON = 16L << 20;   // UpscalerJS's are about 0.1 MiB
    private static final int MAX_SHARDS = 4096;

    private TfjsLayersModel() {}

    public static KerasModel read(Path modelJson) {
        JsonNode root;
        try {
            if (Files.size(modelJson) > MAX_JSON) throw new ModelFormatException(modelJson, "model.json over " + MAX_JSON + " bytes");
            root = Json.MAPPER.readTree(modelJson.toFile());
        } catch (IOException e) {
            throw new ModelFormatException(modelJson, "not valid JSON: " + firstLine(e));
        }
        if (root == null || !root.has("modelTopology") || !root.has("weightsManifest")) {
            throw new ModelFormatException(modelJson, "not a TensorFlow.js layers model (no modelTopology or weightsManifest)");
        }
        JsonNode topo = root.get("modelTopology");
        JsonNode config = topo.has("model_config") ? topo.get("model_config") : topo;
        Path dir = modelJson.toAbsolutePath().getParent();
        Map<String, TensorData> weights = new LinkedHashMap<>();
        java.util.Set<Path> seen = new java.util.HashSet<>();
        if (!root.get("weightsManifest").isArray()) throw new ModelFormatException(modelJson, "weightsManifest is not a list");
        for (JsonNode group : root.get("weightsManifest")) {
            ByteBuffer data = shards(modelJson, dir, group.path("paths"), declaredBytes(modelJson, group.path("weights")), seen);
            for (JsonNode w : group.path("weights")) {
                String name = w.path("name").asText();
                int[] shape = new int[w.path("shape").size()];
                long count = 1;
                for (int i = 0; i < shape.length; i++) {
                    shape[i] = w.path("shape").get(i).asInt(-1);
                    if (shape[i] < 0) throw new ModelFormatException(modelJson, "weight '" + name + "' has a bad shape " + w.path("shape"));
                    count *= shape[i];
                }
                if (count > Integer.MAX_VALUE) throw new ModelFormatException(modelJson, "weight '" + name + "' is too large");
                float[] values = values(modelJson, name, w, data, (int) count);
                weights.put(name, new TensorData(name, shape, values));
            }
            if (data.hasRemaining()) {
                throw new ModelFormatException(modelJson, "shards hold " + data.remaining() + " bytes more than the manifest describes");
            }
        }
        return new KerasModel(weights, config.toString());
    }

    private static float[] values(Path file, String name, JsonNode w, ByteBuffer data, int count) {
        String dtype = w.path("dtype").asText("float32");
        JsonNode q = w.get("quantization");
        String stored = q == null ? dtype : q.path("dtype").asText();
        int size = switch (stored) {
            case "float32", "int32" -> 4;
            case "uint16", "float16" -> 2;
            case "uint8" -> 1;
            default -> throw new ModelFormatException(file, "weight '" + name + "' is stored as " + stored + "; supported: float32, float16, uint16, uint8");
        };
        if (data.remaining() < (long) count * size) {
            throw new ModelFormatException(file, "weight '" + name + "' needs " + (long) count * size + " bytes, the shards have " + data.remaining() + " left (truncated?)");
        }
        float[] out = new float[count];
        float scale = q == null ? 1 : (float) q.path("scale").asDouble(1), min = q == null ? 0 : (float) q.path("min").asDouble(0);
        for (int i = 0; i < count; i++) {
            out[i] = switch (stored) {
                case "float32" -> data.getFloat();
                case "int32" -> data.getInt();
                case "float16" -> Float.float16ToFloat(data.getShort());
                case "uint16" -> (data.getShort() & 0xffff) * scale + min;
                default -> (data.get() & 0xff) * scale + min;
            };
        }
        return out;
    }

    /** The bytes a group's weights need, from the manifest alone (shapes and stored types), before a shard is read. */
    private static long declaredBytes(Path file, JsonNode weights) {
        long total = 0;
        for (JsonNode w : weights) {
            JsonNode q = w.get("quantization");
            String stored = q == null ? w.path("dtype").asText("float32") : q.path("dtype").asText();
            int size = switch (stored) {
                case "float32", "int32" -> 4;
                case "uint16", "float16" -> 2;
                default -> 1;
            };
            long count = 1;
            for (JsonNode d : w.path("shape")) {
                long v = d.isIntegralNumber() ? d.asLong() : -1;
                if (v < 0 || v > Integer.MAX_VALUE) throw new ModelFormatException(file, "weight '" + w.path("name").asText() + "' has a bad shape " + w.path("shape"));
                count = Math.multiplyExact(count, v);
            }
            total = Math.addExact(total, Math.multiplyExact(count, size));
        }
        return total;
    }

    /**
     * A group's shards, concatenated. Each must be a plain file whose real path (links followed)
     * lies in the model's folder, listed once in the whole manifest; their sizes must add up to
     * what the manifest declares before any is read.
     */
    private static ByteBuffer shards(Path file, Path dir, JsonNode paths, long declared, java.util.Set<Path> seen) {
        try {
            Path realDir = dir.toRealPath();
            if (paths.size() > MAX_SHARDS) throw new ModelFormatException(file, "manifest lists " + paths.size() + " shards; at most " + MAX_SHARDS);
            java.util.List<Path> files = new java.util.ArrayList<>();
            long total = 0;
            for (JsonNode p : paths) {
                String name = p.asText();
                Path shard = dir.resolve(name).normalize();
                if (name.contains("..") || name.startsWith("/") || !dir.normalize().equals(shard.getParent())) {
                    throw new ModelFormatException(file, "shard path '" + name + "' leaves the model's folder; refusing it");
                }
                String problem = dev.headroom.models.InputFiles.problem(shard);
                if (problem != null) throw new ModelFormatException(file, "shard '" + name + "' " + (problem.equals("no such file") ? "is missing" : problem));
                Path real = shard.toRealPath();
                if (!realDir.equals(real.getParent())) {
                    throw new ModelFormatException(file, "shard '" + name + "' is a link to " + real + ", outside the model's folder; refusing it");
                }
                if (!seen.add(real)) throw new ModelFormatException(file, "shard '" + name + "' is listed more than once");
                files.add(real);
                total = Math.addExact(total, Files.size(real));
            }
            if (total != declared) {
                throw new ModelFormatException(file, "shards hold " + total + " bytes, the manifest's weights need " + declared + (total < declared ? " (truncated?)" : ""));
            }
            if (total > Integer.MAX_VALUE - 16) throw new ModelFormatException(file, "one weight group of " + total + " bytes is over headroom's 2 GiB limit");
            ByteBuffer all = ByteBuffer.allocate((int) total).order(ByteOrder.LITTLE_ENDIAN);
            for (Path f : files) {
                byte[] b = Files.readAllBytes(f);
                if (b.length > all.remaining()) throw new ModelFormatException(file, "shard " + f.getFileName() + " grew while being read");
                all.put(b);
            }
            return all.flip();
        } catch (IOException e) {
            throw new ModelFormatException(file, "cannot read shards: " + firstLine(e));
        } catch (ArithmeticException e) {
            throw new ModelFormatException(file, "the manifest's sizes overflow 64 bits");
        }
    }

    private static String firstLine(Exception e) {
        String m = String.valueOf(e.getMessage());
        return m.lines().findFirst().orElse(m);
    }
}
