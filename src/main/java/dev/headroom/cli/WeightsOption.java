package dev.headroom.cli;

import dev.headroom.core.quant.WeightFormat;
import dev.headroom.models.Model;
import picocli.CommandLine.Option;

/**
 * --weights: how a model's convolution kernels are held in memory (see {@link WeightFormat}).
 * On the CPU they stay in that form and are expanded a layer at a time; on a GPU they are
 * expanded on the host when loaded (no device-side expansion kernel yet), so only host memory shrinks.
 */
final class WeightsOption {
    @Option(names = "--weights", paramLabel = "fp16|bf16|int8|fp8|nf4",
            description = "Hold convolution kernels as fp16, bf16, int8 or fp8 e4m3 (scale per output channel) or NF4 (blocks of 64; "
                    + "with int8, fp8 and NF4, thin kernels and those outside the repeated blocks stay fp16); default: as the file stores them")
    String weights;

    Model apply(Model m) {
        if (weights == null) return m;
        WeightFormat f;
        try {
            f = WeightFormat.parse(weights);
        } catch (IllegalArgumentException e) {
            throw new Main.UsageError("--weights: " + e.getMessage());
        }
        return m.withWeightFormat(f);
    }
}
