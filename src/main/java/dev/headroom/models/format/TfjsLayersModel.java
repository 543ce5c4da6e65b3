package dev.headroom.models.format;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
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
    private static final long MAX_JSON = 64L << 20;

    private TfjsLayersModel() {}

    public static KerasModel read(Path modelJson) {
        JsonNode root;
        try {
            if (Files.size(modelJson) > MAX_JSON) throw new ModelFormatException(modelJson, "model.json over " + MAX_JSON + " bytes");
            root = new ObjectMapper().readTree(modelJson.toFile());
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
        for (JsonNode group : root.get("weightsManifest")) {
            ByteBuffer data = shards(modelJson, dir, group.path("paths"));
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

    private static ByteBuffer shards(Path file, Path dir, JsonNode paths) {
        try {
            java.io.ByteArrayOutputStream all = new java.io.ByteArrayOutputStream();
            for (JsonNode p : paths) {
                String name = p.asText();
                Path shard = dir.resolve(name).normalize();
                if (name.contains("..") || name.startsWith("/") || !shard.getParent().equals(dir.normalize())) {
                    throw new ModelFormatException(file, "shard path '" + name + "' leaves the model's folder; refusing it");
                }
                if (!Files.isRegularFile(shard)) throw new ModelFormatException(file, "shard '" + name + "' is missing");
                all.write(Files.readAllBytes(shard));
            }
            return ByteBuffer.wrap(all.toByteArray()).order(ByteOrder.LITTLE_ENDIAN);
        } catch (IOException e) {
            throw new ModelFormatException(file, "cannot read shards: " + firstLine(e));
        }
    }

    private static String firstLine(Exception e) {
        String m = String.valueOf(e.getMessage());
        return m.lines().findFirst().orElse(m);
    }
}
