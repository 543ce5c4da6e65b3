package dev.headroom.models.format;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * The JSON reader for model files (safetensors headers, TF.js model.json, Keras model configs):
 * nesting bounded at 64 levels (model configs use about 8) so no hostile file drives a recursion,
 * and strings at 16 MiB.
 */
public final class Json {
    public static final int MAX_DEPTH = 64;

    /** Thread-safe once configured. */
    public static final ObjectMapper MAPPER = new ObjectMapper(JsonFactory.builder()
            .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(MAX_DEPTH).maxStringLength(16 << 20).build())
            .build());

    private Json() {}
}
