package dev.headroom.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.headroom.core.Sizes;
import dev.headroom.core.plan.Fitter;
import dev.headroom.core.quant.WeightFormat;
import dev.headroom.models.image.Encoding;
import dev.headroom.models.image.ImageFormat;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.function.LongSupplier;

/**
 * Turns a submission into a stored job: checks the params, stores the upload (atomically, within
 * --max-upload), reads the image's size from its header (within --max-pixels), plans it with the
 * fitter against the device budget (a job that cannot fit even alone is refused with 422 and the
 * bytes it needs), and answers from the result cache when the same input, model file and
 * parameters were run before.
 *
 * <p>The tile is chosen against the device's whole budget, as {@code headroom upscale} chooses it,
 * not against the memory free at the moment: the same request then always gives the same pixels
 * (the CLI's, and the result cache's), and admission waits until that plan's peak is free.
 */
public final class Submissions {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Set<String> PARAMS = Set.of("task", "model", "priority", "tile", "precision", "weights", "format");

    private final ServeConfig cfg;
    private final DataDir dir;
    private final JobStore store;
    private final ModelCatalog models;
    private final List<DeviceSlot> devices;
    private final JobEvents events;
    private final Metrics metrics;
    private final LongSupplier clock;
    private final Object idempotency = new Object();

    public Submissions(ServeConfig cfg, DataDir dir, JobStore store, ModelCatalog models, List<DeviceSlot> devices, JobEvents events, Metrics metrics,
                       LongSupplier clock) {
        this.cfg = cfg;
        this.dir = dir;
        this.store = store;
        this.models = models;
        this.devices = devices;
        this.events = events;
        this.metrics = metrics;
        this.clock = clock;
    }

    /** @param weights how the model's kernels are held (--weights of upscale); AS_STORED when the request names none */
    record Params(String task, String model, int priority, Integer tile, String precision, String format, WeightFormat weights) {
        /** The model variant the job runs: the model, or NAME@FORMAT for compact weights. */
        String variant() {
            return ModelCatalog.variant(model, weights);
        }
    }

    static Params parse(String json) {
        if (json == null || json.isBlank()) throw ApiError.bad("the 'params' part is missing; send it as JSON, e.g. {\"task\":\"upscale\",\"model\":\"default\"}");
        JsonNode p;
        try {
            p = JSON.readTree(json);
        } catch (IOException e) {
            var at = e instanceof com.fasterxml.jackson.core.JsonProcessingException j ? j.getLocation() : null;
            throw ApiError.bad("the 'params' part is not valid JSON" + (at == null ? "" : " (line " + at.getLineNr() + ", column " + at.getColumnNr() + ")")
                    + "; send an object such as {\"task\":\"upscale\"}");
        }
        if (p == null || !p.isObject()) throw ApiError.bad("the 'params' part is " + HttpApi.shortened(String.valueOf(p)) + ", not a JSON object; send one such as {\"task\":\"upscale\"}");
        for (var it = p.fieldNames(); it.hasNext(); ) {
            String f = it.next();
            if (!PARAMS.contains(f)) throw ApiError.unprocessable("unknown param '" + f + "'; known: " + String.join(", ", PARAMS.stream().sorted().toList()));
        }
        String task = text(p, "task", "upscale");
        if (!task.equals("upscale") && !task.equals("decode")) {
            throw ApiError.unprocessable("task '" + task + "' is not one this server runs; use \"upscale\" (an image) or \"decode\" (a latent, with a VAE)");
        }
        String model = text(p, "model", "default");
        int priority = 0;
        if (p.has("priority")) {
            if (!p.get("priority").canConvertToInt() || !p.get("priority").isIntegralNumber()) throw ApiError.unprocessable("priority " + HttpApi.shortened(p.get("priority").toString()) + " is not an integer; send an integer (higher runs first)");
            priority = p.get("priority").intValue();
        }
        Integer tile = null;
        if (p.has("tile") && !p.get("tile").isNull()) {
            if (!p.get("tile").isIntegralNumber() || p.get("tile").intValue() < Fitter.MIN_TILE || p.get("tile").intValue() > 4096) {
                throw ApiError.unprocessable("tile " + HttpApi.shortened(p.get("tile").toString()) + " is not an integer from " + Fitter.MIN_TILE
                        + " to 4096 (input pixels); send one, or leave tile out to let the planner choose");
            }
            tile = p.get("tile").intValue();
        }
        String precision = p.has("precision") && !p.get("precision").isNull() ? text(p, "precision", null) : null;
        WeightFormat weights;
        try {
            weights = WeightFormat.parse(text(p, "weights", "stored"));
        } catch (IllegalArgumentException e) {
            throw ApiError.unprocessable(e.getMessage() + " (or leave it out: kernels as the file stores them)");
        }
        String format = text(p, "format", "png");
        ImageFormat f = ImageFormat.named(format);
        if (f == null || f == ImageFormat.TIFF) throw ApiError.unprocessable("format '" + format + "' is not one this server writes; use png, jpeg or webp");
        if (task.equals("decode") && f != ImageFormat.PNG) throw ApiError.unprocessable("a decode writes png; leave format out");
        if (task.equals("decode") && weights != WeightFormat.AS_STORED) throw ApiError.unprocessable("weights apply to upscale jobs; leave it out of a decode");
        return new Params(task, model, priority, tile, precision, f.name().toLowerCase(java.util.Locale.ROOT), weights);
    }

    private static String text(JsonNode p, String field, String dflt) {
        JsonNode v = p.get(field);
        if (v == null || v.isNull()) return dflt;
        if (!v.isTextual()) throw ApiError.unprocessable(field + " " + HttpApi.shortened(v.toString()) + " is not a string; send it in quotes");
        return v.asText();
    }

    /** Stores and plans a submission; returns the job (an existing one for a repeated Idempotency-Key). */
    public Job submit(String paramsJson, InputStream image, String idempotencyKey) throws IOException {
        Params p = parse(paramsJson);
        if (idempotencyKey != null && (idempotencyKey.isBlank() || idempotencyKey.length() > 200)) {
            throw ApiError.bad("Idempotency-Key has " + idempotencyKey.length() + " characters" + (idempotencyKey.isBlank() ? ", all blank" : "")
                    + "; send 1 to 200, not all blank");
        }
        if (image == null) throw ApiError.bad("the 'image' part is missing; send the image (for a decode, the latent) as a multipart part named 'image'");
        if (!models.knows(p.model())) throw ApiError.unprocessable(new ModelCatalog.UnknownModel(p.model(), models.names()).getMessage());
        DeviceSlot device = devices.getFirst();
        if (p.precision() != null && !p.precision().equalsIgnoreCase(device.precision().name())) {
            throw ApiError.unprocessable("precision '" + p.precision() + "': this server runs " + device.precision().name().toLowerCase()
                    + " on " + device.name() + "; leave precision out");
        }
        String id = UUID.randomUUID().toString();
        Path upload = dir.upload(id);
        boolean keep = false;
        try {
            String inputHash;
            try {
                inputHash = DataDir.writeAtomically(image, upload, cfg.maxUpload());
            } catch (DataDir.TooLarge e) {
                throw new ApiError(413, "Content Too Large", "the upload is larger than this server's limit of " + Sizes.format(cfg.maxUpload())
                        + " (--max-upload); send a smaller file");
            }
            long now = clock.getAsLong();
            Planned pl = p.task().equals("decode") ? DecodePlans.plan(p, upload, inputHash, load(p, now), device, cfg.maxPixels())
                    : planUpscale(p, upload, inputHash, load(p, now), device);
            String key = pl.key();
            ObjectNode canonical = JSON.createObjectNode().put("task", p.task()).put("model", p.model()).put("priority", p.priority())
                    .put("format", p.format()).put("scale", pl.scale());
            if (p.tile() != null) canonical.put("tile", p.tile());
            if (p.weights() != WeightFormat.AS_STORED) canonical.put("weights", p.weights().name().toLowerCase(java.util.Locale.ROOT));
            var hit = cfg.cacheBytes() > 0 ? store.cacheGet(key, now) : java.util.Optional.<JobStore.CacheEntry>empty();
            boolean cached = hit.isPresent() && linkCached(key, dir.result(id));
            int tiles = pl.tiles();
            Job job = new Job(id, 0, cached ? JobState.succeeded : JobState.queued, p.priority(), p.variant(), canonical.toString(), inputHash,
                    pl.width(), pl.height(), pl.peak(), pl.weights(), pl.tile(), pl.batch(), 0, null, key, cached, cached ? hit.get().resultHash() : null,
                    cached ? hit.get().bytes() : 0, cached ? tiles : 0, tiles, idempotencyKey, false, null, 0, now, cached ? now : 0, cached ? now : 0);
            Job stored;
            synchronized (idempotency) {
                stored = store.insert(job);
            }
            if (!stored.id().equals(id)) return stored;   // a repeated Idempotency-Key: the first job stands
            keep = true;
            metrics.submitted.inc();
            if (cached) {
                metrics.cacheHits.inc();
                events.emit(id, "queued", Map.of("position", 0));
                events.emit(id, "succeeded", Map.of("cached", true, "result_bytes", stored.resultBytes(), "etag", stored.resultHash()));
            } else {
                if (cfg.cacheBytes() > 0) metrics.cacheMisses.inc();
                events.emit(id, "queued", Map.of("predicted_peak_bytes", stored.peakBytes(), "tile", stored.tile()));
            }
            return stored;
        } finally {
            if (!keep) {
                Files.deleteIfExists(upload);
                Files.deleteIfExists(dir.result(id));
            }
        }
    }

    /**
     * What a submission was planned into: the input's size (image pixels, or latent positions), the
     * output's scale, the planned peak and weights, the tiling (a decode's tile is its band height
     * in output rows, 0 whole) and the result cache's key.
     */
    record Planned(int width, int height, int scale, long peak, long weights, int tile, int batch, int tiles, String key) {}

    /** The job's model (or its compact-weights variant), loaded; a model that cannot load is the client's 422. */
    private ModelCatalog.Loaded load(Params p, long now) {
        try {
            return models.get(p.variant(), now);
        } catch (RuntimeException e) {
            throw cannotLoad(p.model(), e);
        }
    }

    /** A model whose file cannot be read (the operator's file, not the client's request): the client's 422, with why. */
    static ApiError cannotLoad(String model, RuntimeException e) {
        return ApiError.unprocessable("model '" + model + "' cannot be loaded on this server (" + ApiError.why(e) + "); ask its operator or use another");
    }


    private Planned planUpscale(Params p, Path upload, String inputHash, ModelCatalog.Loaded m, DeviceSlot device) {
        ImageHeader h = ImageHeader.read(upload, cfg.maxPixels());
        if (m.vae() != null) throw ApiError.unprocessable("model '" + p.model() + "' is a VAE: send it latents with \"task\":\"decode\"");
        Fitter.Fit fit = fit(m, h, p.tile(), device);
        return new Planned(h.width(), h.height(), m.model().scale(), fit.plan().peak(), fit.plan().weights(), fit.tile(), fit.batch(), fit.tiles(),
                cacheKey(inputHash, m.fileHash(), p, fit, device));
    }

    /** The plan {@code headroom upscale} would make on this device: largest tile, then batch, within the budget's usable share. */
    static Fitter.Fit fit(ModelCatalog.Loaded m, ImageHeader h, Integer tile, DeviceSlot device) {
        try {
            return Fitter.fit(Fitter.Request.of(m.model().graph(), h.width(), h.height(), device.budget(), p -> device.memoryModel(m.model()))
                    .withOverlap(Workers.OVERLAP).withUsableFraction(device.usable()).withPrecisions(List.of(device.precision()))
                    .withTile(tile == null ? 0 : tile).withBatchPixels(device.gpu() ? Fitter.GPU_BATCH_PIXELS : 0)
                    // the header does not say the channels: an RGB image's output window is reserved for every image (at most one tile row of output)
                    .withOutputWindow(device.gpu() && dev.headroom.runtime.TiledUpscaler.deviceBlend()));
        } catch (Fitter.NoFit e) {
            throw ApiError.unprocessable("this job cannot fit on " + device.name() + " even alone: " + e.getMessage());
        }
    }

    private boolean linkCached(String key, Path result) {
        Path c = dir.cached(key);
        try {
            try {
                Files.createLink(result, c);
            } catch (UnsupportedOperationException | IOException e) {
                Files.copy(c, result);
            }
            return true;
        } catch (IOException e) {
            return false;   // evicted meanwhile: run it
        }
    }

    /** How a job's result is encoded: its format with the defaults of `headroom upscale` (so the same bytes). */
    static Encoding encoding(String format) {
        ImageFormat f = ImageFormat.named(format);
        return new Encoding(f == null ? ImageFormat.PNG : f, null, Encoding.PNG_LEVEL);
    }

    /** Input bytes, model file and everything that decides the output's pixels. */
    static String cacheKey(String inputHash, String modelHash, Params p, Fitter.Fit fit, DeviceSlot device) {
        var md = DataDir.sha256();
        String s = String.join("|", "v2", inputHash, modelHash, p.format(), device.gpu() ? "cuda" : "cpu", device.precision().name(),
                "tile=" + fit.tile(), "batch=" + fit.batch(), "overlap=" + Workers.OVERLAP);
        if (p.weights() != WeightFormat.AS_STORED) s += "|weights=" + p.weights().name();   // stored keeps the keys cached before weights existed
        return HexFormat.of().formatHex(md.digest(s.getBytes(java.nio.charset.StandardCharsets.UTF_8)));
    }
}
