package dev.headroom.cli;

import dev.headroom.core.Sizes;
import dev.headroom.core.quant.WeightFormat;
import dev.headroom.models.Model;
import dev.headroom.runtime.GraphRunner;
import dev.headroom.runtime.PreparedWeights;
import dev.headroom.runtime.Session;
import dev.headroom.runtime.WeightStream;
import picocli.CommandLine.Option;

/**
 * --weights: how a model's convolution kernels are held in memory (see {@link WeightFormat}).
 * On the CPU they stay in that form and are expanded a layer at a time; on a GPU int8, fp8 and
 * NF4 kernels stay compact in device memory and are expanded just before each convolution.
 * --weight-budget: the device bytes the kernels may take; what does not fit is streamed from
 * pinned host memory layer by layer ({@link PreparedWeights#streamed}).
 */
final class WeightsOption {
    /** Prefetch slots for streamed kernels: the planner chooses (at least two, so that the next layer's copy runs while one computes). */
    private static final int SLOTS = WeightStream.AUTO_SLOTS;

    @Option(names = "--weight-budget", paramLabel = "SIZE",
            description = "Device memory the convolution kernels may take (e.g. 200MiB); the rest is streamed from host memory layer by layer. Default: all resident")
    String weightBudget;

    @Option(names = "--weights", paramLabel = "fp16|bf16|int8|fp8|nf4",
            description = "Hold convolution kernels as fp16, bf16, int8 or fp8 e4m3 (scale per output channel) or NF4 (blocks of 64; "
                    + "with int8, fp8 and NF4, thin kernels and those outside the repeated blocks stay fp16); default: as the file stores them")
    String weights;

    /**
     * A runner for {@code m} on {@code ops}: its kernels within --weight-budget with the rest
     * streamed; without the option, all resident unless they do not fit beside a small tile's
     * activations (a 256-pixel tile on a GPU, 64 on the CPU), in which case the planner streams
     * what does not fit ({@link WeightStream#autoBudget}) and says so on stderr.
     */
    GraphRunner runner(Model m, Session ops) {
        if (weightBudget == null) {
            long auto = WeightStream.autoBudget(m.graph(), m.weights(), ops, ops.device().accelerator() ? 256 : 64);
            if (auto != Long.MAX_VALUE) {
                try {
                    PreparedWeights p = PreparedWeights.streamed(m.graph(), m.weights(), ops, auto, SLOTS);
                    var sp = p.stream() == null ? null : p.stream().split();
                    if (sp != null) {
                        System.err.printf("headroom: the model's kernels do not fit the memory budget beside a tile; %d of %d layers are streamed"
                                + " from host memory (%s resident, %d slots of %s)%n", sp.streamedCount(), sp.resident().length,
                                Sizes.format(sp.residentBytes()), sp.slots(), Sizes.format(sp.slotBytes()));
                    }
                    return GraphRunner.owning(m.graph(), p, ops);
                } catch (IllegalArgumentException e) {
                    // not even the slots fit: prepare them all as before, and let the memory error say what is short
                }
            }
            return new GraphRunner(m.graph(), m.weights(), ops);
        }
        long bytes = budgetBytes();
        PreparedWeights p;
        try {
            p = PreparedWeights.streamed(m.graph(), m.weights(), ops, bytes, SLOTS);
        } catch (IllegalArgumentException e) {
            throw tooSmall(e);
        }
        return GraphRunner.owning(m.graph(), p, ops);
    }

    /** --weight-budget in bytes, or null when not given (a malformed size is bad input). */
    Long budgetBytes() {
        if (weightBudget == null) return null;
        try {
            return Sizes.parseOption(weightBudget);
        } catch (IllegalArgumentException e) {
            throw new Main.UsageError("--weight-budget: " + e.getMessage());
        }
    }

    /** The usage error for a --weight-budget too small for the slots ({@code e}'s message has the bytes needed). */
    Main.UsageError tooSmall(IllegalArgumentException e) {
        return new Main.UsageError("--weight-budget " + weightBudget + ": " + e.getMessage());
    }

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
