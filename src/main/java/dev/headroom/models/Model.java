package dev.headroom.models;

import dev.headroom.core.Weights;
import dev.headroom.core.graph.Graph;
import java.nio.file.Path;

/**
 * A loaded model, ready to run: what it is (format, family, details), its graph and weights,
 * and the value range its input and output use (1 for [0, 1], 255 for [0, 255]).
 */
public record Model(Path file, String format, String family, String details, String storedType,
                    Graph graph, Weights weights, float valueRange, String rangeSource) {

    public int scale() {
        return graph.scale();
    }

    public long parameters() {
        return weights.parameterCount();
    }

    /** This model with its convolution kernels held in {@code f} ({@code --weights}, or a server job's {@code weights}). */
    public Model withWeightFormat(dev.headroom.core.quant.WeightFormat f) {
        if (f == dev.headroom.core.quant.WeightFormat.AS_STORED) return this;
        return new Model(file, format, family, details, storedType + ", kernels held as " + f, graph, f.apply(weights), valueRange, rangeSource);
    }

    public Model withValueRange(float range, String source) {
        return new Model(file, format, family, details, storedType, graph, weights, range, source);
    }
}
