package dev.headroom.models.arch;

import dev.headroom.core.TensorData;
import dev.headroom.core.graph.Graph;
import java.util.Map;

/** A recognised architecture: its family, a line of details, its graph and its weights (kernels HWIO). */
public record Detected(String family, String details, Graph graph, Map<String, TensorData> weights) {}
