package dev.headroom.server;

import dev.headroom.models.DefaultModel;
import dev.headroom.models.Model;
import dev.headroom.models.ModelLoader;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Supplier;

/**
 * The models the server knows by name: {@code default} (idealo's RDN psnr-small x2, fetched on
 * first use), each {@code --model NAME=FILE} (or {@code NAME=synthetic:ARCH}, a full-size
 * architecture with seeded random weights, as {@code upscale --synthetic} builds it), and each file
 * in DATA/models/ by its name without the extension. A request names a model; it never gives a path.
 *
 * <p>Loaded models (graph and host weights) are kept here, loaded once and shared by every job of
 * that model, until {@link #unload}. This is the server's small model cache until the device
 * residency manager (DESIGN.md: Devices, sessions and residency) takes over device weights; on the
 * CPU backend weights stay in host memory anyway.
 */
public final class ModelCatalog {

    /** A name the server does not know. */
    public static final class UnknownModel extends RuntimeException {
        UnknownModel(String name, List<String> known) {
            super("model '" + name + "' is not one this server knows; known: " + String.join(", ", known));
        }
    }

    /** @param vae the VAE (its latent scaling, its graphs) when the model is one; {@code model} is then its decoder as a Model */
    public record Loaded(String name, Model model, dev.headroom.models.Vae vae, String fileHash, long weightBytes, long loadedAt, long lastUsed) {}

    private final Map<String, Supplier<Path>> files = new TreeMap<>();
    private final Map<String, Loaded> loaded = new LinkedHashMap<>();
    private long loads, unloads;

    /**
     * Between a model's name and a weight format in the name of a variant: {@code rrdb@int8} is
     * rrdb with its kernels held as int8 (a job's {@code weights}); loaded once, shared, resident
     * and evicted as a model of its own. Model names cannot hold it.
     */
    public static final char VARIANT = '@';

    /** The name jobs of {@code model} with kernels held in {@code f} run under. */
    public static String variant(String model, dev.headroom.core.quant.WeightFormat f) {
        return f == dev.headroom.core.quant.WeightFormat.AS_STORED ? model : model + VARIANT + f.name().toLowerCase(java.util.Locale.ROOT);
    }

    /** The seed of synthetic models, as {@code headroom upscale --synthetic} uses it (same weights, same pixels). */
    public static final long SYNTHETIC_SEED = 2026;
    public static final String SYNTHETIC = "synthetic:";

    public ModelCatalog(Map<String, Path> named, Path folder) throws IOException {
        files.put("default", DefaultModel::file);
        if (folder != null && Files.isDirectory(folder)) {
            try (var s = Files.list(folder)) {
                for (Path p : (Iterable<Path>) s::iterator) {
                    String n = p.getFileName().toString();
                    if (Files.isRegularFile(p) && !n.startsWith(".") && n.indexOf(VARIANT) < 0) files.put(n.contains(".") ? n.substring(0, n.indexOf('.')) : n, () -> p);
                }
            }
        }
        named.forEach((n, p) -> files.put(n, () -> p));
    }

    public synchronized List<String> names() {
        return new ArrayList<>(files.keySet());
    }

    public synchronized boolean knows(String name) {
        return files.containsKey(name);
    }

    /** The model (or a variant, NAME@FORMAT), loading it on first use. */
    public Loaded get(String name, long now) {
        int at = name.indexOf(VARIANT);
        if (at > 0) {
            synchronized (this) {
                Loaded l = loaded.get(name);
                if (l != null) return touch(l, now);
            }
            Loaded base = get(name.substring(0, at), now);
            Model m = base.model().withWeightFormat(dev.headroom.core.quant.WeightFormat.parse(name.substring(at + 1)));
            synchronized (this) {
                return loaded.computeIfAbsent(name, k -> new Loaded(name, m, base.vae(), base.fileHash(), base.weightBytes(), now, now));
            }
        }
        Supplier<Path> file;
        synchronized (this) {
            Loaded l = loaded.get(name);
            if (l != null) return touch(l, now);
            file = files.get(name);
            if (file == null) throw new UnknownModel(name, names());
        }
        // loading takes a while: outside the lock (two first requests may both load; one wins)
        Path f = file.get();
        Model m;
        dev.headroom.models.Vae vae = null;
        String hash;
        if (f.toString().startsWith(SYNTHETIC)) {
            String arch = f.toString().substring(SYNTHETIC.length());
            m = dev.headroom.models.SyntheticModels.build(arch, SYNTHETIC_SEED);
            hash = java.util.HexFormat.of().formatHex(DataDir.sha256().digest((SYNTHETIC + arch + "@" + SYNTHETIC_SEED).getBytes(java.nio.charset.StandardCharsets.UTF_8)));
        } else {
            m = ModelLoader.load(f);
            if ("AutoencoderKL".equals(m.family())) {
                vae = dev.headroom.models.Vae.load(f);   // its latent scaling and decoder, for decode jobs
                m = vae.asModel();
            }
            try {
                hash = DataDir.sha256(f);
            } catch (IOException e) {
                throw new IllegalStateException("cannot read model file " + f + ": " + e.getMessage(), e);
            }
        }
        synchronized (this) {
            Loaded l = loaded.get(name);
            if (l != null) return l;
            l = new Loaded(name, m, vae, hash, m.parameters() * 4, now, now);
            loaded.put(name, l);
            loads++;
            return l;
        }
    }

    private synchronized Loaded touch(Loaded l, long now) {
        Loaded used = new Loaded(l.name, l.model, l.vae, l.fileHash, l.weightBytes, l.loadedAt, now);
        loaded.put(l.name, used);
        return used;
    }

    /** Drops the host copy of a model and of its variants. */
    public synchronized boolean unload(String name) {
        if (!files.containsKey(name)) throw new UnknownModel(name, names());
        loaded.keySet().removeIf(k -> k.startsWith(name + VARIANT));
        boolean was = loaded.remove(name) != null;
        if (was) unloads++;
        return was;
    }

    public synchronized List<Loaded> loaded() {
        return new ArrayList<>(loaded.values());
    }

    public synchronized boolean isLoaded(String name) {
        return loaded.containsKey(name);
    }

    public synchronized long loads() {
        return loads;
    }

    public synchronized long unloads() {
        return unloads;
    }
}
