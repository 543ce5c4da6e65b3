package dev.headroom.models.format;

import dev.headroom.core.TensorData;
import java.util.Map;

/**
 * What a Keras file holds: weights named {@code layer/param} (e.g. {@code F_0/kernel}, kernels in
 * Keras's (kh, kw, cin, cout)) and, when the file has one, the model's JSON config (its graph).
 */
public record KerasModel(Map<String, TensorData> weights, String modelConfigJson) {
    public boolean hasGraph() {
        return modelConfigJson != null;
    }
}
