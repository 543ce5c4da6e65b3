package dev.headroom.server;

import dev.headroom.core.Sizes;
import dev.headroom.core.sched.Scheduling;
import dev.headroom.core.sched.Waiting;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The dashboard's view of the server as JSON: devices (budget, reserved, pressure and its
 * thresholds), the memory timeline's new samples and markers, the queue in the policy's order with
 * why each job waits, running jobs with progress and ETA, recently finished jobs, models and alerts.
 * Every string here is data for the page to show as text, never markup.
 */
final class DashboardState {
    private static final int QUEUE_SHOWN = 100, FINISHED_SHOWN = 12;

    private final HeadroomServer server;
    private final Dashboard dashboard;
    private final Deque<String> finished = new ArrayDeque<>();

    DashboardState(HeadroomServer server, Dashboard dashboard) {
        this.server = server;
        this.dashboard = dashboard;
        server.events().listen((job, e) -> {
            if (e.terminal()) remember(job);
        });
    }

    private synchronized void remember(String job) {
        finished.remove(job);
        finished.addFirst(job);
        while (finished.size() > FINISHED_SHOWN) finished.removeLast();
    }

    private synchronized List<String> finishedIds() {
        return new ArrayList<>(finished);
    }

    Map<String, Object> full() {
        Map<String, Object> s = since(0, 0);
        s.remove("_samples_seq");
        s.remove("_markers_seq");
        return s;
    }

    /** Everything, with only the samples and markers after the given sequence numbers (returned as _samples_seq, _markers_seq). */
    Map<String, Object> since(long samplesAfter, long markersAfter) {
        long now = server.now();
        Map<String, Object> s = new LinkedHashMap<>();
        s.put("now", now);
        s.put("paused", server.store().paused());
        List<Map<String, Object>> devices = new ArrayList<>();
        Map<String, String> runningOn = new HashMap<>();
        for (DeviceSlot d : server.devices()) {
            Map<String, Object> v = d.snapshot();
            var th = dev.headroom.runtime.memory.Pressure.Thresholds.DEFAULT;
            v.put("thresholds", List.of(th.elevated(), th.warning(), th.critical()));
            devices.add(v);
            for (String j : d.reservations().keySet()) runningOn.put(j, d.name());
            for (String j : d.finishing()) runningOn.put(j, d.name());   // left the device, finishing its file: still that device's job
        }
        s.put("devices", devices);
        var samples = dashboard.timeline.samplesAfter(samplesAfter);
        var markers = dashboard.timeline.markersAfter(markersAfter);
        s.put("samples", samples.stream().map(x -> Map.of("t", x.t(), "device", x.device(), "bytes", x.bytes())).toList());
        s.put("markers", markers.stream().map(m -> Map.of("t", m.t(), "device", m.device(), "kind", m.kind(), "label", m.label())).toList());
        s.put("_samples_seq", samples.isEmpty() ? samplesAfter : samples.getLast().seq());
        s.put("_markers_seq", markers.isEmpty() ? markersAfter : markers.getLast().seq());
        s.put("queue", queue(now));
        List<Map<String, Object>> running = new ArrayList<>();
        for (Job j : server.store().list(JobState.running, 0, 100)) {
            Map<String, Object> v = job(j, now);
            v.put("device", runningOn.getOrDefault(j.id(), ""));
            long elapsed = j.started() == 0 ? 0 : now - j.started();
            v.put("elapsed_s", elapsed / 1000.0);
            if (j.progressDone() > 0 && j.progressTotal() > 0) {
                v.put("eta_s", elapsed / 1000.0 * (j.progressTotal() - j.progressDone()) / j.progressDone());
            }
            running.add(v);
        }
        s.put("running", running);
        List<Map<String, Object>> done = new ArrayList<>();
        for (String id : finishedIds()) server.store().get(id).ifPresent(j -> done.add(job(j, now)));
        s.put("finished", done);
        s.put("models", server.modelsView());
        s.put("counts", server.store().counts());
        s.put("alerts", Map.of("firing", dashboard.alerts.firing().stream().map(a -> AlertWebhook.payload(a, server.url())).toList(),
                "recent", dashboard.alerts.recent().stream().map(a -> AlertWebhook.payload(a, server.url())).toList()));
        return s;
    }

    private Map<String, Object> job(Job j, long now) {
        Map<String, Object> v = new LinkedHashMap<>();
        v.put("id", j.id());
        v.put("state", j.state().name());
        v.put("model", j.model());
        v.put("priority", j.priority());
        v.put("width", j.width());
        v.put("height", j.height());
        v.put("predicted_peak_bytes", j.peakBytes());
        v.put("progress", Map.of("done", j.progressDone(), "total", j.progressTotal()));
        v.put("error", j.error());
        v.put("cached", j.cached());
        v.put("created_at", Instant.ofEpochMilli(j.created()).toString());
        if (j.finished() > 0) {
            v.put("finished_at", Instant.ofEpochMilli(j.finished()).toString());
            if (j.started() > 0) v.put("ran_s", (j.finished() - j.started()) / 1000.0);
        }
        if (j.state() == JobState.succeeded) {
            v.put("result", "/v1/jobs/" + j.id() + "/result");
            v.put("format", Workers.format(j));
            if (java.nio.file.Files.isRegularFile(dashboard.timeline.trace(j.id()))) v.put("memory_report", "/v1/jobs/" + j.id() + "/memory-report");
        }
        return v;
    }

    /** The queue in the order the policy serves it, each with why it waits. */
    private List<Map<String, Object>> queue(long now) {
        List<Job> queued = server.store().queued(1000);
        Map<String, Job> byId = new HashMap<>();
        List<Waiting> w = new ArrayList<>();
        for (Job q : queued) {
            byId.put(q.id(), q);
            w.add(new Waiting(q.id(), q.priority(), q.created(), q.seq(), q.model(), q.peakBytes()));
        }
        List<Waiting> order = Scheduling.order(w, now, Scheduling.Config.DEFAULT);
        boolean paused = server.store().paused();
        List<Map<String, Object>> out = new ArrayList<>();
        for (int i = 0; i < order.size() && i < QUEUE_SHOWN; i++) {
            Job j = byId.get(order.get(i).id());
            Map<String, Object> v = job(j, now);
            v.put("effective_priority", Math.round(Scheduling.effectivePriority(order.get(i), now, Scheduling.Config.DEFAULT) * 100) / 100.0);
            v.put("waited_s", Math.max(0, now - j.created()) / 1000.0);
            v.put("why", paused ? "the queue is paused" : why(server.devices(), d -> d.need(j, d.residentModels()), i));
            out.add(v);
        }
        return out;
    }

    /** Why a queued job that needs {@code needOn} bytes on a device (activations, and weights unless resident), {@code position} jobs from the head, is not running: the device it would fit best, and what it lacks there. */
    static String why(List<DeviceSlot> devices, java.util.function.ToLongFunction<DeviceSlot> needOn, int position) {
        String best = null;
        long bestShort = Long.MAX_VALUE;
        List<String> full = new ArrayList<>();
        for (DeviceSlot d : devices) {
            long need = needOn.applyAsLong(d), free = d.headroom();
            if (!d.hasSlot()) {
                full.add(d.name() + " (" + (d.runningCount() >= d.maxRunning() ? d.runningCount() + " of " + d.maxRunning() + " running"
                        : d.finishingCount() + " finishing their files") + ")");
                continue;
            }
            if (need > free && need - free < bestShort) {
                bestShort = need - free;
                best = "waiting for " + Sizes.format(need - free) + " on " + d.name() + " (needs " + Sizes.format(need) + ", " + Sizes.format(free) + " free)";
            } else if (need <= free) {
                return position == 0 ? "fits on " + d.name() + "; starting" : "fits; behind " + position + (position == 1 ? " job" : " jobs") + " in the queue";
            }
        }
        if (best == null && !full.isEmpty()) best = "waiting for a free slot on " + String.join(", ", full);   // every device named: all are full
        return best == null ? "waiting for a device" : best;
    }
}
