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
}
