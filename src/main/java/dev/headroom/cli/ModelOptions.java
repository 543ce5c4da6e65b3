package dev.headroom.cli;

import dev.headroom.models.Model;
import dev.headroom.models.SyntheticModels;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** The model options of upscale, bench and plan: --model FILE or --synthetic NAME, and --whole-tensors. */
final class ModelOptions {
    @Option(names = "--model", paramLabel = "FILE", description = "Model file (.safetensors, .pth/.pt, .h5, TF.js model.json); default: the default model")
    Path file;

    @Option(names = "--synthetic", paramLabel = "NAME", description = "A full-size architecture with seeded random weights instead of a file, "
            + "to try memory and speed: " + SyntheticModels.NAMES)
    String synthetic;

    @Option(names = "--whole-tensors", description = "Run every layer on whole tensors, not the high-resolution tail in row bands: more memory, for comparison")
    boolean wholeTensors;

    /** The model asked for ({@link ModelOption#load(Path, String)}). */
    Model load() {
        return ModelOption.load(file, synthetic);
    }

    /** What --json reports as the model: "synthetic NAME" or the file. */
    String describe(Model m) {
        return synthetic != null ? "synthetic " + synthetic : m.file().toString();
    }
}
