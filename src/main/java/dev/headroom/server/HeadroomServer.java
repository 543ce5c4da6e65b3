package dev.headroom.server;

import dev.headroom.core.sched.Scheduling;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code headroom serve}: the job store, the model catalog, the devices and their workers, the
 * metrics and the HTTP API, put together; {@link #start} opens them in order, {@link #stop} closes
 * them in reverse (stop admitting, let running jobs finish within the grace period or hand them
 * back to the queue, close the store).
 */
public final class HeadroomServer implements AutoCloseable {
    private final ServeConfig cfg;
    private final DataDir dir;
    private final JobStore store;
    private final ModelCatalog models;
    private final List<DeviceSlot> devices = new ArrayList<>();
    private final JobEvents events = new JobEvents();
    private final Metrics metrics;
    private final Workers workers;
    private final Submissions submissions;
    private final HttpApi api;
    private volatile boolean ready;
    private int port;
    private Alerts.Config alertConfig = Alerts.Config.DEFAULT;
    private Dashboard dashboard;

    public HeadroomServer(ServeConfig cfg, JobRunner runner) throws IOException {
        this.cfg = cfg;
        this.dir = new DataDir(cfg.data(), cfg.fleet().shared());
        this.store = openStore(cfg.fleet(), dir);
        this.models = new ModelCatalog(cfg.models(), dir.models());
        devices.addAll(cfg.devices());
        this.metrics = new Metrics(store, devices, this::now, models);
        this.workers = new Workers(cfg, dir, store, models, devices, runner, events, metrics, this::now, Scheduling.Config.DEFAULT);
        metrics.fleet(cfg.fleet().node(), store::nodes, workers.aliveMillis());
        this.submissions = new Submissions(cfg, dir, store, models, devices, events, metrics, this::now);
        this.api = new HttpApi(cfg, this, cfg.auth() ? dir.token() : "");
    }

    /** Recovers the queue, starts the workers and the HTTP listener; returns what recovery did. */
    public JobStore.Recovery start() throws IOException {
        if (!cfg.auth()) dir.token();   // the file exists either way, so clients find it
        dashboard = new Dashboard(this, cfg.auth(), cfg.auth() ? dir.token() : "", alertConfig);
        JobStore.Recovery r = workers.start();
        Path tmp = dir.root().resolve("uploads").resolve(".multipart");
        Files.createDirectories(tmp);
        port = api.start(tmp);
        workers.advertise(url());
        dashboard.start();
        ready = true;
        return r;
    }

    /** SQLite in DATA, or the fleet's PostgreSQL (its password from --store-password-file, else PGPASSWORD, else ~/.pgpass). */
    static JobStore openStore(ServeConfig.Fleet fleet, DataDir dir) throws IOException {
        if (fleet.store() == null) return new SqliteJobStore(dir.db());
        if (fleet.shared() == null) {
            throw new IllegalArgumentException("a PostgreSQL job store is shared by several servers, so they need a folder all of them mount for "
                    + "uploads and results: give --results DIR");
        }
        String password = fleet.passwordFile() != null ? Files.readString(fleet.passwordFile()).strip() : System.getenv("PGPASSWORD");
        return new PostgresJobStore(PostgresTarget.parse(fleet.store()), password);
    }

    /** The node registry as GET /v1/nodes shows it: every server that has registered, alive or not. */
    List<Map<String, Object>> nodesView() {
        List<Map<String, Object>> out = new ArrayList<>();
        for (JobStore.Node n : store.nodes()) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("name", n.name());
            m.put("url", n.url());
            m.put("self", n.owner().equals(workers.owner().toString()));
            m.put("alive", n.ageMillis() <= workers.aliveMillis());
            m.put("last_heartbeat_ms_ago", n.ageMillis());
            m.put("started_at", java.time.Instant.ofEpochMilli(n.started()).toString());
            m.put("running_jobs", n.running());
            m.put("free_slots", n.freeSlots());
            try {
                m.put("devices", HttpApi.JSON.readTree(n.devices()));
                m.put("models_resident", HttpApi.JSON.readTree(n.models()));
            } catch (IOException e) {
                m.put("error", "unreadable registry row");
            }
            out.add(m);
        }
        return out;
    }

    /** The alert rules' settings (before {@link #start}). */
    public void alerts(Alerts.Config c) {
        alertConfig = c;
    }

    Dashboard dashboard() {
        return dashboard;
    }

    ModelCatalog models() {
        return models;
    }

    public int port() {
        return port;
    }

    public String url() {
        String h = cfg.host().contains(":") ? "[" + cfg.host() + "]" : cfg.host();
        return "http://" + h + ":" + port;
    }

    public Path tokenFile() {
        return dir.tokenFile();
    }

    boolean ready() {
        return ready;
    }

    long now() {
        return System.currentTimeMillis();
    }

    JobStore store() {
        return store;
    }

    DataDir dir() {
        return dir;
    }

    JobEvents events() {
        return events;
    }

    Metrics metrics() {
        return metrics;
    }

    Workers workers() {
        return workers;
    }

    Submissions submissions() {
        return submissions;
    }

    List<DeviceSlot> devices() {
        return devices;
    }

    void poke() {
        workers.poke();
    }

    Map<String, Object> pause(boolean on) {
        store.paused(on);
        poke();
        return Map.of("paused", on);
    }

    List<Map<String, Object>> modelsView() {
        List<Map<String, Object>> out = new ArrayList<>();
        Map<String, ModelCatalog.Loaded> loaded = new LinkedHashMap<>();
        for (var l : models.loaded()) loaded.put(l.name(), l);
        for (String n : models.names()) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("name", n);
            var l = loaded.get(n);
            m.put("loaded", l != null);
            m.put("priority", "normal");
            List<Map<String, Object>> on = new ArrayList<>();
            for (DeviceSlot d : devices) {
                for (var s : d.residency().status()) {
                    String variant = residentName(s.key(), d);
                    if (!(n.equals(variant) || variant.startsWith(n + ModelCatalog.VARIANT))) continue;
                    Map<String, Object> r = new LinkedHashMap<>();
                    r.put("device", d.name());
                    r.put("weights", variant.equals(n) ? "stored" : variant.substring(n.length() + 1));
                    r.put("where", s.where().name().toLowerCase());
                    r.put("priority", s.priority().name().toLowerCase());
                    r.put("device_bytes", s.deviceBytes());
                    r.put("jobs_using", s.refs());
                    on.add(r);
                }
            }
            m.put("resident", on);
            if (l != null) {
                m.put("family", l.model().family());
                m.put("scale", l.model().scale());
                m.put("size_bytes", l.weightBytes());
                m.put("sha256", l.fileHash());
                m.put("last_used_at", java.time.Instant.ofEpochMilli(l.lastUsed()).toString());
            }
            out.add(m);
        }
        return out;
    }

    Map<String, Object> loadModel(String name, boolean load) {
        if (!models.knows(name)) throw new ApiError(404, "Not Found", new ModelCatalog.UnknownModel(name, models.names()).getMessage());
        long freed = 0;
        if (load) {
            // onto every device, and released at once: resident and idle, the first to go when room is needed
            ModelCatalog.Loaded l;
            try {
                l = models.get(name, now());
            } catch (RuntimeException e) {
                throw Submissions.cannotLoad(name, e);
            }
            var src = new dev.headroom.runtime.Residency.Source(l.model().graph(), l.model().weights(), l.model().valueRange());
            for (DeviceSlot d : devices) {
                try {
                    DeviceSlot.onPlatformThread(() -> {
                        d.residency().acquire(name, dev.headroom.core.residency.ResidencyPolicy.Priority.NORMAL, () -> src, d.precision(), null, d.weightBudget(l.model())).close();
                        return null;
                    });
                } catch (IllegalArgumentException e) {   // its weights cannot fit this device's budget at all
                    throw ApiError.unprocessable("model '" + name + "' cannot be loaded on " + d.name() + ": " + ApiError.why(e));
                } catch (dev.headroom.runtime.memory.DeviceOutOfMemory e) {   // not now: running jobs hold the room
                    throw new ApiError(503, "Service Unavailable", "model '" + name + "' does not fit on " + d.name() + " now (" + ApiError.why(e)
                            + "); try again when running jobs have ended");
                } catch (RuntimeException e) {
                    throw e;
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            }
        } else {
            // every device's weights at once (not while a job runs the model: 409), then the server's host copy
            for (DeviceSlot d : devices) {
                try {
                    freed += DeviceSlot.onPlatformThread(() -> {
                        long b = 0;
                        for (var s : d.residency().status()) {
                            String on = residentName(s.key(), d);
                            if (on.equals(name) || on.startsWith(name + ModelCatalog.VARIANT)) b += d.residency().evict(on, d.precision());
                        }
                        return b;
                    });
                } catch (dev.headroom.runtime.Residency.InUse e) {
                    throw new ApiError(409, "Conflict", e.getMessage());
                } catch (RuntimeException e) {
                    throw e;
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            }
            models.unload(name);
        }
        poke();
        return load ? Map.of("name", name, "loaded", models.isLoaded(name)) : Map.of("name", name, "loaded", models.isLoaded(name), "freed_device_bytes", freed);
    }

    /** The model (or variant) a residency key of device d names: the key less its precision. */
    private static String residentName(String key, DeviceSlot d) {
        String suffix = " " + d.precision();
        return key.endsWith(suffix) ? key.substring(0, key.length() - suffix.length()) : key;
    }

    /** Stops admitting, lets running jobs finish within the grace period (then hands them back), stops listening, closes the store. */
    public void stop() {
        ready = false;
        if (dashboard != null) dashboard.stop();
        workers.drain(cfg.grace());
        api.stop();
        workers.close();
        store.close();
        for (DeviceSlot d : devices) {
            try {
                d.close();
            } catch (RuntimeException e) {
                System.err.println("headroom serve: closing " + d.name() + ": " + e.getMessage());
            }
        }
    }

    @Override
    public void close() {
        stop();
    }
}
