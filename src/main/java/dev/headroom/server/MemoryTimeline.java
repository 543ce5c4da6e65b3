package dev.headroom.server;

import dev.headroom.runtime.memory.Budget;
import dev.headroom.runtime.memory.DeviceMemory;
import dev.headroom.runtime.memory.MemoryTrace;
import java.io.IOException;
import java.io.Writer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What the dashboard's memory timeline draws: per device, samples of memory by band (each model's
 * weights, each running job's activations, workspace, the allocator's cache beyond live blocks,
 * and reserved-but-unused), and markers for the events that matter (job admitted and finished,
 * model loaded or unloaded, rung of the degrade ladder, out of memory). Bounded: the last
 * {@link #SAMPLES} samples and {@link #MARKERS} markers; each carries a sequence number so a
 * stream sends only what is new.
 *
 * <p>It also keeps each finished job's memory trace as DATA/reports/JOB.trace (JSON lines, the
 * last {@link #TRACES} jobs), which {@code GET /v1/jobs/{id}/memory-report} draws.
 */
final class MemoryTimeline {
    static final int SAMPLES = 4000, MARKERS = 500, TRACES = 200;

    /** Bytes by band on one device at time t (milliseconds); band names: weights/MODEL, activations/JOB, workspace, cache, reserved. */
    record Sample(long seq, long t, String device, Map<String, Long> bytes) {}

    /** kind: admitted, finished, failed, cancelled, load, unload, rung, oom. */
    record Marker(long seq, long t, String device, String kind, String label) {}

    private final List<DeviceSlot> devices;
    private final ModelCatalog models;
    private final Path reports;
    private final Deque<Sample> samples = new ArrayDeque<>();
    private final Deque<Marker> markers = new ArrayDeque<>();
    private final Map<String, String> jobDevice = new HashMap<>();
    private final Map<String, Map<String, Long>> rungsSeen = new HashMap<>();   // by device
    private final Deque<String> traced = new ArrayDeque<>();
    private Set<String> loaded = new HashSet<>();
    private long seq, lastTileSample;

    MemoryTimeline(List<DeviceSlot> devices, ModelCatalog models, Path reports) {
        this.devices = devices;
        this.models = models;
        this.reports = reports;
    }

    /** Takes one sample of every device, and marks rungs taken and models loaded or unloaded since the last. */
    synchronized void sample(long now) {
        for (DeviceSlot d : devices) {
            DeviceMemory m = d.device().memory();
            Map<String, Long> bands = new LinkedHashMap<>();
            Map<String, Long> activations = new HashMap<>();
            long live = 0, cache = 0;
            // the ledger's tree is the device memory's to guard (Budget is not thread-safe): job threads add and close
            // their nodes meanwhile, and walking it unguarded threw ConcurrentModificationException out of this listener
            synchronized (m) {
                for (Budget b : m.ledger().children()) {
                    switch (b.name()) {
                        case "cache" -> cache = b.used();
                        case "weights", "activations" -> {
                            // weights by model (the residency manager's node per model), activations by job (a node "job ID" per job)
                            long named = 0;
                            for (Budget c : b.children()) {
                                String n = b.name().equals("activations") && c.name().startsWith("job ") ? c.name().substring(4) : c.name();
                                if (b.name().equals("activations")) activations.merge(n, c.used(), Long::sum);
                                bands.merge(b.name() + "/" + n, c.used(), Long::sum);
                                named += c.used();
                            }
                            if (b.used() > named) bands.merge(b.name(), b.used() - named, Long::sum);
                            live += b.used();
                        }
                        default -> {
                            bands.merge(b.name(), b.used(), Long::sum);
                            live += b.used();
                        }
                    }
                }
            }
            bands.values().removeIf(v -> v == 0);
            // the allocator's segments hold the live blocks; what they hold beyond them is cache
            if (cache > live) bands.put("cache", cache - live);
            long unallocated = 0;
            for (var r : d.reservations().entrySet()) unallocated += Math.max(0, r.getValue() - activations.getOrDefault(r.getKey(), 0L));
            if (unallocated > 0) bands.put("reserved", unallocated);
            Map<String, Long> before = rungsSeen.getOrDefault(d.name(), Map.of());
            Map<String, Long> rungs = m.rungs();
            for (var r : rungs.entrySet()) {
                long n = r.getValue() - before.getOrDefault(r.getKey(), 0L);
                if (n > 0 && rungsSeen.containsKey(d.name())) mark(now, d.name(), "rung", r.getKey() + (n > 1 ? " x" + n : ""));
            }
            rungsSeen.put(d.name(), Map.copyOf(rungs));
            samples.addLast(new Sample(++seq, now, d.name(), bands));
            if (samples.size() > SAMPLES) samples.removeFirst();
        }
        Set<String> now_ = new HashSet<>();
        for (var l : models.loaded()) now_.add(l.name());
        for (String m : now_) if (!loaded.contains(m)) mark(now, "*", "load", "model " + m + " loaded");
        for (String m : loaded) if (!now_.contains(m)) mark(now, "*", "unload", "model " + m + " unloaded");
        loaded = now_;
    }

    /** A job's event: admissions and ends become markers; tiles ask for a sample (at most every 100 ms) so short jobs show too. */
    void emitted(String job, JobEvents.Event e, long now) {
        boolean sampleNow = false;
        synchronized (this) {
            switch (e.name()) {
                case "admitted" -> {
                    String d = String.valueOf(e.data().get("device"));
                    jobDevice.put(job, d);
                    mark(now, d, "admitted", "job " + job + " admitted, reserves " + dev.headroom.core.Sizes.format(((Number) e.data().get("reserved_bytes")).longValue()));
                    sampleNow = true;
                }
                case "succeeded", "failed", "cancelled", "requeued" -> {
                    String d = jobDevice.remove(job);
                    if (d != null) {
                        Object err = e.data().get("error");
                        boolean oom = err != null && err.toString().toLowerCase().contains("out of memory");
                        mark(now, d, oom ? "oom" : e.name().equals("succeeded") ? "finished" : e.name(), "job " + job + " " + e.name()
                                + (err == null ? "" : ": " + err));
                    }
                    sampleNow = d != null;
                    if (d != null) keepTrace(job, d);
                }
                case "tile" -> {
                    if (now - lastTileSample >= 100) {
                        lastTileSample = now;
                        sampleNow = true;
                    }
                }
                default -> { }
            }
        }
        if (sampleNow) sample(now);
    }

    private void mark(long now, String device, String kind, String label) {
        markers.addLast(new Marker(++seq, now, device, kind, label));
        if (markers.size() > MARKERS) markers.removeFirst();
    }

    synchronized List<Sample> samplesAfter(long after) {
        List<Sample> out = new ArrayList<>();
        for (Sample s : samples) if (s.seq() > after) out.add(s);
        return out;
    }

    synchronized List<Marker> markersAfter(long after) {
        List<Marker> out = new ArrayList<>();
        for (Marker m : markers) if (m.seq() > after) out.add(m);
        return out;
    }

    synchronized long seq() {
        return seq;
    }

    /**
     * Keeps an ended job's memory trace for its report: the device trace's events tagged with the
     * job (its activations), written off the caller's thread a moment later so the frees at the
     * job's close are in it.
     */
    private void keepTrace(String job, String device) {
        DeviceSlot slot = null;
        for (DeviceSlot d : devices) if (d.name().equals(device)) slot = d;
        var trace = slot == null ? null : slot.device().memory().trace();
        if (trace == null || reports == null) return;
        String tag = "job " + job;
        Thread.ofVirtual().name("headroom-trace-" + job).start(() -> {
            try {
                Thread.sleep(300);
                Files.createDirectories(reports);
                Path f = trace(job), tmp = reports.resolve("." + job + ".tmp");
                MemoryTrace only = new MemoryTrace(trace.events().size() + 1);
                for (MemoryTrace.Event e : trace.events()) {
                    if (tag.equals(e.job())) only.add(e.kind(), e.address(), e.bytes(), e.category(), e.op(), e.job(), e.allocated(), e.reserved(), e.detail());
                }
                if (only.events().isEmpty()) return;
                try (Writer w = Files.newBufferedWriter(tmp)) {
                    only.write(w);
                }
                DataDir.move(tmp, f);
                String old = null;
                synchronized (this) {
                    traced.addLast(job);
                    if (traced.size() > TRACES) old = traced.removeFirst();
                }
                if (old != null) Files.deleteIfExists(trace(old));
            } catch (IOException e) {
                System.err.println("headroom serve: could not keep the memory trace of job " + job + ": " + e.getMessage());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
    }

    Path trace(String job) {
        return reports.resolve(job + ".trace");
    }
}
