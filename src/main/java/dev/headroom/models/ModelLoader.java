package dev.headroom.models;

import dev.headroom.core.MapWeights;
import dev.headroom.core.TensorData;
import dev.headroom.core.graph.Graph;
import dev.headroom.core.graph.Node;
import dev.headroom.core.graph.Op;
import dev.headroom.models.arch.Detected;
import dev.headroom.models.arch.KerasArchitectures;
import dev.headroom.models.arch.KerasGraph;
import dev.headroom.models.arch.UnsupportedArchitecture;
import dev.headroom.models.arch.TorchArchitectures;
import dev.headroom.models.format.KerasH5;
import dev.headroom.models.format.KerasModel;
import dev.headroom.models.format.Safetensors;
import dev.headroom.models.format.TfjsLayersModel;
import dev.headroom.models.format.TorchCheckpoint;
import dev.headroom.models.format.WeightFile;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * Opens any model file headroom reads, recognises its architecture and returns a {@link Model}.
 * The format is told by content, not by name: HDF5 and zip by their magic numbers, safetensors by
 * its header, TF.js by model.json (or a folder holding one).
 *
 * <p>Value range: no format records whether a model wants [0, 1] or [0, 255], and measuring it
 * does not work (a network of ReLUs is nearly scale-equivariant: both ranges give plausible
 * images that differ by 10-25 LSB). It follows the file's origin instead, and {@code --value-range}
 * overrides it: PyTorch files, Keras HDF5 (idealo's training code divides by 255) and RRDN are
 * [0, 1]; RDN in TF.js, as UpscalerJS converted and retrained it, is [0, 255].
 */
public final class ModelLoader {
    private ModelLoader() {}

    public static Model load(Path file) {
        Path f = file;
        if (Files.isDirectory(f)) {
            f = f.resolve("model.json");
            if (!Files.isRegularFile(f)) throw new ModelFormatException(file, "is a folder without model.json (a TF.js model's folder holds one)");
        }
        String problem = InputFiles.problem(f);
        if (problem != null) throw new ModelFormatException(f, problem);
        try {
            Model m = read(file, f);
            checkWeights(f, m);
            return m;
        } catch (ModelFormatException e) {
            throw e;
        } catch (RuntimeException e) {
            // a reader met a structure it did not expect: the file is damaged or of a kind headroom does not read
            String what = e.getMessage() == null || e.getMessage().isBlank() ? e.getClass().getSimpleName() : e.getClass().getSimpleName() + ": " + e.getMessage();
            throw new ModelFormatException(f, "damaged or unsupported model file (" + what + ")", e);
        }
    }

    private static Model read(Path file, Path f) {
        byte[] head = head(f);
        try {
            if (startsWith(head, 0x89, 'H', 'D', 'F')) return keras(f, "Keras HDF5", KerasH5.read(f), "float32");
            if (startsWith(head, 'P', 'K', 3, 4)) {
                var hints = new dev.headroom.models.arch.VaeArchitecture.Hints();
                WeightFile vae = TorchCheckpoint.read(f, hints);
                if (dev.headroom.models.arch.VaeArchitecture.prefix(vae.tensors().keySet()) != null) return Vae.of(f, "PyTorch zip checkpoint", vae, hints).asModel();
                return torch(f, "PyTorch zip checkpoint", TorchCheckpoint.read(f, name -> true, ModelLoader::requireKnown));
            }
            if (looksLikeSafetensors(head)) {
                // a VAE, maybe inside a whole checkpoint: read only its tensors
                var hints = new dev.headroom.models.arch.VaeArchitecture.Hints();
                WeightFile vae = Safetensors.read(f, hints);
                if (dev.headroom.models.arch.VaeArchitecture.prefix(vae.tensors().keySet()) != null) return Vae.of(f, "safetensors", vae, hints).asModel();
                return torch(f, "safetensors", Safetensors.read(f, name -> true, ModelLoader::requireKnown));
            }
            if (f.getFileName().toString().endsWith(".json") || (head.length > 0 && head[0] == '{')) {
                return keras(f, "TensorFlow.js layers", TfjsLayersModel.read(f), "float32");
            }
        } catch (UnsupportedArchitecture e) {
            throw new ModelFormatException(file, e.getMessage());
        }
        if (startsWith(head, 0x80) || head.length > 0 && head[0] == 'c') {
            throw new ModelFormatException(file, "legacy (pre-1.6) PyTorch pickle; re-save it with torch.save in a current PyTorch, or convert it to safetensors");
        }
        throw new ModelFormatException(file, "not a model file headroom reads (safetensors, PyTorch zip .pth/.pt, Keras .h5, TF.js model.json)");
    }

    /** Every weight the graph binds exists with the shape the graph needs (else the runtime would fail later, far from the file). */
    private static void checkWeights(Path f, Model m) {
        Graph g = m.graph();
        for (Node n : g.nodes()) {
            switch (n.op()) {
                case Op.Conv2d c -> {
                    expect(f, m, n, c.weight(), (long) c.kh() * c.kw() * c.cin() * c.cout());
                    if (c.bias() != null) expect(f, m, n, c.bias(), c.cout());
                    if (c.act().preluWeight() != null) expect(f, m, n, c.act().preluWeight(), c.cout());
                }
                case Op.Activation a when a.act().preluWeight() != null -> expect(f, m, n, a.act().preluWeight(), g.channels(n.input(0)));
                default -> { }
            }
        }
    }

    private static void expect(Path f, Model m, Node n, String name, long count) {
        if (!m.weights().has(name)) throw new ModelFormatException(f, "layer '" + n.name() + "' needs weight '" + name + "', which the file does not have");
        long have = m.weights().get(name).count();
        if (have != count) {
            throw new ModelFormatException(f, "layer '" + n.name() + "': weight '" + name + "' has " + have + " values ("
                    + m.weights().get(name).shapeString() + "), the layer needs " + count);
        }
    }

    /** Before any tensor data is read: the names must be those of a family headroom runs. */
    private static void requireKnown(java.util.Set<String> names) {
        if (dev.headroom.models.arch.VaeArchitecture.prefix(names) == null) TorchArchitectures.requireKnown(names);
    }

    private static Model torch(Path f, String format, WeightFile wf) {
        Detected d = TorchArchitectures.detect(wf.tensors());
        return new Model(f, format, d.family(), d.details(), String.join("+", wf.storedTypes()),
                d.graph(), new MapWeights(d.weights(), f.getFileName().toString()), 1f, "PyTorch convention");
    }

    private static Model keras(Path f, String format, KerasModel km, String stored) {
        Map<String, TensorData> w = km.weights();
        String[] id = KerasArchitectures.identify(w);
        if (!km.hasGraph()) {
            throw new ModelFormatException(f, "Keras weights file without a model config" + (id == null ? "" : " (looks like " + id[0] + " " + id[1] + ")")
                    + "; save the whole model (model.save) so its graph can be read");
        }
        MapWeights weights = new MapWeights(w, f.getFileName().toString());
        Graph g = KerasGraph.build(km.modelConfigJson(), weights);
        String family = id == null ? "Keras graph" : id[0];
        String details = (id == null ? "" : id[1] + ", ") + "x" + g.scale() + ", " + g.convCount() + " convolutions";
        boolean upscalerJsRdn = "RDN".equals(family) && format.startsWith("TensorFlow.js");
        return new Model(f, format, family, details, stored, g, weights, upscalerJsRdn ? 255f : 1f,
                upscalerJsRdn ? "UpscalerJS's RDN convention" : format.startsWith("Keras") ? "idealo's Keras convention" : "convention of " + family);
    }

    private static byte[] head(Path f) {
        try (InputStream in = Files.newInputStream(f)) {
            return in.readNBytes(16);
        } catch (IOException e) {
            throw new ModelFormatException(f, "cannot read: " + e.getMessage());
        }
    }

    private static boolean startsWith(byte[] b, int... magic) {
        if (b.length < magic.length) return false;
        for (int i = 0; i < magic.length; i++) if ((b[i] & 0xff) != magic[i]) return false;
        return true;
    }

    private static boolean looksLikeSafetensors(byte[] b) {
        if (b.length < 9) return false;
        long n = 0;
        for (int i = 7; i >= 0; i--) n = (n << 8) | (b[i] & 0xff);
        return n > 1 && n < (100L << 20) && b[8] == '{';
    }
}
