package dev.headroom.models.arch;

import com.fasterxml.jackson.databind.JsonNode;
import dev.headroom.core.Weights;
import dev.headroom.core.graph.Act;
import dev.headroom.core.graph.ChannelOrder;
import dev.headroom.core.graph.Graph;
import dev.headroom.core.graph.GraphBuilder;
import dev.headroom.core.graph.Padding;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Turns a Keras functional model config (Keras 2 JSON, as in HDF5 {@code model_config} and
 * TF.js {@code modelTopology}) into a {@link Graph}. Layers: InputLayer, Conv2D (stride 1),
 * Activation, ReLU, LeakyReLU, PReLU, Concatenate (channel axis), Add, UpSampling2D (nearest),
 * and the custom layers of idealo's RRDN: MultiplyBeta (y = beta * x) and PixelShuffle
 * (tf.nn.depth_to_space, DCR order). Conv weights are named {@code layer/kernel} and {@code layer/bias}.
 */
public final class KerasGraph {
    private KerasGraph() {}

    /** RRDN has about 200 layers; resolving an unordered list is quadratic in the count. */
    static final int MAX_LAYERS = 5000;

    public static Graph build(String configJson, Weights weights) {
        JsonNode root;
        try {
            root = dev.headroom.models.format.Json.MAPPER.readTree(configJson);
        } catch (IOException e) {
            throw new UnsupportedArchitecture("model config is not valid JSON");
        }
        JsonNode cfg = root.path("config");
        JsonNode layers = cfg.path("layers");
        if (!layers.isArray() || layers.isEmpty()) throw new UnsupportedArchitecture("model config has no layers (class " + root.path("class_name").asText("?") + ")");
        if (layers.size() > MAX_LAYERS) throw new UnsupportedArchitecture("model config has " + layers.size() + " layers; headroom reads at most " + MAX_LAYERS);

        GraphBuilder g = null;
        Map<String, Integer> ids = new HashMap<>();
        List<JsonNode> pending = new ArrayList<>();
        layers.forEach(pending::add);
        // Keras lists layers in topological order, but nothing promises it: resolve until stuck.
        while (!pending.isEmpty()) {
            boolean progress = false;
            for (var it = pending.iterator(); it.hasNext(); ) {
                JsonNode layer = it.next();
                String cls = layer.path("class_name").asText();
                String name = layer.path("config").path("name").asText(layer.path("name").asText());
                if (cls.equals("InputLayer")) {
                    if (g != null) throw new UnsupportedArchitecture("model has more than one input; headroom runs single-input image models");
                    JsonNode shape = layer.path("config").path("batch_input_shape");
                    if (shape.isMissingNode()) shape = layer.path("config").path("batch_shape");
                    int c = shape.isArray() && shape.size() == 4 ? shape.get(3).asInt(3) : 3;
                    g = new GraphBuilder(c);
                    ids.put(name, g.input());
                    it.remove();
                    progress = true;
                    continue;
                }
                List<String> inbound = inbound(layer, name);
                if (g == null || !ids.keySet().containsAll(inbound)) continue;
                int[] in = inbound.stream().mapToInt(ids::get).toArray();
                ids.put(name, layer(g, cls, name, layer.path("config"), in, weights));
                it.remove();
                progress = true;
            }
            if (!progress) {
                throw new UnsupportedArchitecture("layers " + pending.stream().map(l -> l.path("name").asText()).limit(5).toList() + " read inputs that no layer produces");
            }
        }
        JsonNode outs = cfg.path("output_layers");
        String out = outs.isArray() && !outs.isEmpty() ? outs.get(0).get(0).asText() : layers.get(layers.size() - 1).path("name").asText();
        if (outs.size() > 1) throw new UnsupportedArchitecture("model has " + outs.size() + " outputs; headroom runs single-output image models");
        Integer outId = ids.get(out);
        if (outId == null) throw new UnsupportedArchitecture("output layer '" + out + "' is not in the model");
        return g.build(outId);
    }

    private static List<String> inbound(JsonNode layer, String name) {
        JsonNode nodes = layer.path("inbound_nodes");
        if (!nodes.isArray() || nodes.isEmpty()) return List.of();
        if (nodes.size() > 1) throw new UnsupportedArchitecture("layer '" + name + "' is shared (called " + nodes.size() + " times); not supported");
        List<String> out = new ArrayList<>();
        JsonNode first = nodes.get(0);
        if (first.isObject()) throw new UnsupportedArchitecture("layer '" + name + "' uses the Keras 3 config format; save the model with Keras 2 (tf.keras)");
        for (JsonNode ref : first) out.add(ref.get(0).asText());
        return out;
    }

    private static int layer(GraphBuilder g, String cls, String name, JsonNode c, int[] in, Weights weights) {
        if (cls.startsWith("PixelShuffle")) {
            return g.pixelShuffle(name, in[0], c.path("scale").asInt(), ChannelOrder.TF);
        }
        return switch (cls) {
            case "Conv2D" -> conv(g, name, c, in[0], weights);
            case "Activation" -> g.act(name, in[0], activation(name, c.path("activation").asText()));
            case "ReLU" -> g.act(name, in[0], Act.RELU);
            case "LeakyReLU" -> g.act(name, in[0], Act.leakyRelu((float) c.path("alpha").asDouble(c.path("negative_slope").asDouble(0.3))));
            case "PReLU" -> g.act(name, in[0], Act.prelu(name + "/alpha"));
            case "Concatenate" -> {
                int axis = c.path("axis").asInt(-1);
                if (axis != -1 && axis != 3) throw new UnsupportedArchitecture("layer '" + name + "' concatenates on axis " + axis + "; only the channel axis is supported");
                yield g.concat(name, in);
            }
            case "Add" -> g.add(name, in);
            case "MultiplyBeta" -> g.scale(name, in[0], (float) c.path("beta").asDouble(0.2));
            case "UpSampling2D" -> {
                JsonNode size = c.path("size");
                int r = size.isArray() ? size.get(0).asInt() : size.asInt(2);
                if (size.isArray() && size.get(1).asInt() != r) throw new UnsupportedArchitecture("layer '" + name + "' upsamples unevenly " + size);
                String interp = c.path("interpolation").asText("nearest");
                if (!interp.equals("nearest")) throw new UnsupportedArchitecture("layer '" + name + "' uses " + interp + " upsampling; only nearest is supported");
                yield g.upsample(name, in[0], r);
            }
            case "Lambda" -> throw new UnsupportedArchitecture("layer '" + name + "' is a Lambda (Python code that cannot be read from the file); not supported");
            default -> throw new UnsupportedArchitecture("layer '" + name + "' has class " + cls + ", which headroom does not support");
        };
    }

    private static int conv(GraphBuilder g, String name, JsonNode c, int in, Weights weights) {
        JsonNode ks = c.path("kernel_size"), st = c.path("strides"), dil = c.path("dilation_rate");
        int kh = ks.get(0).asInt(), kw = ks.get(1).asInt();
        if (st.isArray() && (st.get(0).asInt() != 1 || st.get(1).asInt() != 1)) throw new UnsupportedArchitecture("layer '" + name + "' has strides " + st + "; only stride 1 is supported");
        if (dil.isArray() && (dil.get(0).asInt() != 1 || dil.get(1).asInt() != 1)) throw new UnsupportedArchitecture("layer '" + name + "' is dilated " + dil);
        if (c.path("groups").asInt(1) != 1) throw new UnsupportedArchitecture("layer '" + name + "' is a grouped convolution");
        if (!c.path("data_format").asText("channels_last").equals("channels_last")) throw new UnsupportedArchitecture("layer '" + name + "' is channels_first");
        Padding pad = switch (c.path("padding").asText("valid")) {
            case "same" -> Padding.SAME;
            case "valid" -> Padding.VALID;
            default -> throw new UnsupportedArchitecture("layer '" + name + "' has padding " + c.path("padding"));
        };
        boolean bias = c.path("use_bias").asBoolean(true);
        int filters = c.path("filters").asInt();
        String kernel = name + "/kernel";
        if (weights.has(kernel) && weights.get(kernel).dim(-1) != filters) {
            throw new UnsupportedArchitecture("layer '" + name + "' has " + filters + " filters but its kernel is " + weights.get(kernel).shapeString());
        }
        return g.conv(name, in, kernel, bias ? name + "/bias" : null, kh, kw, filters, pad, activation(name, c.path("activation").asText("linear")));
    }

    private static Act activation(String layer, String a) {
        return switch (a) {
            case "linear" -> Act.NONE;
            case "relu" -> Act.RELU;
            default -> throw new UnsupportedArchitecture("layer '" + layer + "' uses activation '" + a + "'; supported: linear, relu");
        };
    }
}
