package dev.headroom.core;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/** Weights held in an insertion-ordered map. */
public final class MapWeights implements Weights {
    private final Map<String, TensorData> tensors;
    private final String source;

    public MapWeights(Map<String, TensorData> tensors, String source) {
        this.tensors = Collections.unmodifiableMap(new LinkedHashMap<>(tensors));
        this.source = source;
    }

    @Override
    public TensorData get(String name) {
        TensorData t = tensors.get(name);
        if (t == null) throw new IllegalArgumentException(source + ": no tensor named '" + name + "'");
        return t;
    }

    @Override
    public boolean has(String name) {
        return tensors.containsKey(name);
    }

    @Override
    public Set<String> names() {
        return tensors.keySet();
    }
}
