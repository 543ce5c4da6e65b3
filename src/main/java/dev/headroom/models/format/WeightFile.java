package dev.headroom.models.format;

import dev.headroom.core.TensorData;
import java.util.Map;
import java.util.Set;

/** The tensors of a weight file (converted to fp32) and the element types they were stored in. */
public record WeightFile(Map<String, TensorData> tensors, Set<String> storedTypes) {}
