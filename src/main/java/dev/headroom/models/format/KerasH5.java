package dev.headroom.models.format;

import dev.headroom.core.TensorData;
import dev.headroom.models.ModelFormatException;
import io.jhdf.HdfFile;
import io.jhdf.api.Attribute;
import io.jhdf.api.Dataset;
import io.jhdf.api.Group;
import io.jhdf.api.Node;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Keras HDF5 files, read with jHDF. A whole model ({@code model.save}) has a {@code model_config}
 * attribute and its weights under {@code /model_weights}; a weights file ({@code save_weights})
 * has them at the root. Either way the root of the weights lists {@code layer_names}, and each
 * layer's group lists its {@code weight_names} (such as {@code F_0/kernel:0}).
 */
public final class KerasH5 {
    private KerasH5() {}

    /** Declared weight bytes may exceed the file's size at most this many times (Keras stores weights uncompressed). */
    static final long MAX_RATIO = 32;

    public static KerasModel read(Path file) {
        try (HdfFile h5 = new HdfFile(file)) {
            String config = stringAttr(h5, "model_config");
            Group root = h5.getChild("model_weights") instanceof Group g ? g : h5;
            Object layerNames = attr(root, "layer_names");
            if (layerNames == null) throw new ModelFormatException(file, "HDF5 file without Keras 'layer_names': not a Keras model");
            String[] layers = strings(layerNames);
            if (layers.length > 10_000) throw new ModelFormatException(file, "HDF5 file lists " + layers.length + " layers; headroom reads at most 10000");
            // first every weight's declared size against the file, then the data
            Map<String, Dataset> sets = new LinkedHashMap<>();
            long declared = 0, fileSize = java.nio.file.Files.size(file);
            for (String layer : layers) {
                if (!(root.getChild(layer) instanceof Group lg)) {
                    throw new ModelFormatException(file, "layer '" + layer + "' is listed but has no group (damaged file?)");
                }
                Object names = attr(lg, "weight_names");
                if (names == null) continue;
                for (String wn : strings(names)) {
                    Node n = lg.getByPath(wn);
                    if (!(n instanceof Dataset ds)) throw new ModelFormatException(file, "weight '" + wn + "' of layer '" + layer + "' is missing");
                    String param = wn.substring(wn.lastIndexOf('/') + 1).replaceFirst(":\\d+$", "");
                    long bytes = ds.getSizeInBytes();
                    if (bytes < 0) throw new ModelFormatException(file, "weight '" + wn + "' declares a negative size");
                    declared = Math.addExact(declared, bytes);
                    sets.put(layer + "/" + param, ds);
                }
            }
            if (declared > fileSize * MAX_RATIO + (1 << 20)) {
                throw new ModelFormatException(file, "weights declare " + declared + " bytes in a file of " + fileSize + ", over " + MAX_RATIO
                        + " times (a decompression bomb or a damaged file)");
            }
            Map<String, TensorData> weights = new LinkedHashMap<>();
            for (var e : sets.entrySet()) weights.put(e.getKey(), new TensorData(e.getKey(), e.getValue().getDimensions(), floats(file, e.getKey(), e.getValue())));
            if (weights.isEmpty()) throw new ModelFormatException(file, "Keras file holds no weights");
            return new KerasModel(weights, config);
        } catch (ModelFormatException e) {
            throw e;
        } catch (java.io.IOException e) {
            throw new ModelFormatException(file, "cannot read: " + firstLine(e), e);
        } catch (RuntimeException e) {
            // jHDF reports damaged files with its own unchecked exceptions
            throw new ModelFormatException(file, "not a readable HDF5 file (" + firstLine(e) + ")", e);
        }
    }

    private static float[] floats(Path file, String key, Dataset ds) {
        Object flat = ds.getDataFlat();
        return switch (flat) {
            case float[] f -> f;
            case double[] d -> {
                float[] f = new float[d.length];
                for (int i = 0; i < d.length; i++) f[i] = (float) d[i];
                yield f;
            }
            default -> throw new ModelFormatException(file, "weight '" + key + "' is " + flat.getClass().getSimpleName() + ", expected float32 or float64");
        };
    }

    private static Object attr(Node n, String name) {
        Attribute a = n.getAttribute(name);
        return a == null ? null : a.getData();
    }

    private static String stringAttr(Node n, String name) {
        Object o = attr(n, name);
        return switch (o) {
            case null -> null;
            case String s -> s;
            case String[] s when s.length == 1 -> s[0];
            case byte[] b -> new String(b, java.nio.charset.StandardCharsets.UTF_8);
            default -> null;
        };
    }

    private static String[] strings(Object o) {
        return switch (o) {
            case String[] s -> s;
            case String s -> new String[] {s};
            default -> new String[0];
        };
    }

    private static String firstLine(Throwable e) {
        String m = e.getMessage() == null ? "" : e.getMessage().lines().findFirst().orElse("");
        // jHDF's messages are sometimes a bare number ("-2015" from a negative array size): name the kind too
        return m.codePoints().anyMatch(Character::isLetter) ? m : (e.getClass().getSimpleName() + " " + m).trim();
    }
}
