package dev.headroom.cli;

import dev.headroom.models.DefaultModel;
import dev.headroom.models.Model;
import dev.headroom.models.ModelLoader;
import java.nio.file.Path;

/** Loads --model FILE, or the default model (fetched on first use). */
final class ModelOption {
    private ModelOption() {}

    static Model load(Path file) {
        return ModelLoader.load(file != null ? file : DefaultModel.file());
    }

    /** --model FILE, or --synthetic NAME (an unknown name is bad input), or the default model. */
    static Model load(Path file, String synthetic) {
        if (synthetic == null) return load(file);
        if (file != null) throw new Main.UsageError("give --model or --synthetic, not both");
        try {
            return dev.headroom.models.SyntheticModels.build(synthetic, 2026);
        } catch (IllegalArgumentException e) {
            throw new Main.UsageError("--synthetic: " + e.getMessage());
        }
    }
}
