package dev.headroom.server;

import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.CounterWithCallback;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.instrumentation.jvm.JvmMetrics;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.IOException;
import java.io.OutputStream;
import java.util.List;
import java.util.function.LongSupplier;

/**
 * The server's Prometheus metrics (names as {@code scripts/serve/alerts.yml} uses them). Counts
 * and histograms are updated as things happen; jobs by state, the queue and device memory are read
 * when Prometheus scrapes, so they are never stale.
 */
public final class Metrics {
    private final PrometheusRegistry registry = new PrometheusRegistry();
    final Counter submitted, cacheHits, cacheMisses, outOfMemory, refused, jobPhaseSeconds;
    final Histogram jobSeconds, admissionWaitSeconds;

    public Metrics(JobStore store, List<DeviceSlot> devices, LongSupplier now, ModelCatalog models) {
        // the JVM's and the process's own: GC pauses (jvm_gc_collection_seconds), heap and native memory, threads,
        // process CPU (process_cpu_seconds_total); a host too busy to feed its GPUs shows here first
        JvmMetrics.builder().register(registry);
        submitted = Counter.builder().name("headroom_jobs_submitted").help("Jobs accepted with 202").register(registry);
        refused = Counter.builder().name("headroom_jobs_refused").help("Submissions refused, by HTTP status").labelNames("status").register(registry);
        cacheHits = Counter.builder().name("headroom_cache_hits").help("Submissions answered from the result cache").register(registry);
        cacheMisses = Counter.builder().name("headroom_cache_misses").help("Submissions that had to run").register(registry);
        // rungs, loads and evictions are counted by each device's memory and residency manager
        CounterWithCallback.builder().name("headroom_memory_rungs").help("Rungs of the degrade ladder taken on the devices").labelNames("rung")
                .callback(cb -> {
                    java.util.Map<String, Long> all = new java.util.TreeMap<>();
                    for (String r : new String[] {"flush-cache", "evict", "halve-batch", "shrink-tile"}) all.put(r, 0L);
                    for (DeviceSlot d : devices) d.device().memory().rungs().forEach((k, v) -> all.merge(k, v, Long::sum));
                    all.forEach((k, v) -> cb.call(v, k));
                }).register(registry);
        outOfMemory = Counter.builder().name("headroom_out_of_memory_errors").help("Jobs that failed out of device memory after every rung").register(registry);
        CounterWithCallback.builder().name("headroom_model_loads").help("Model weights loaded onto a device (from disk or a host copy)")
                .callback(cb -> cb.call(devices.stream().mapToLong(d -> d.residency().counts()[0] + d.residency().counts()[1]).sum())).register(registry);
        CounterWithCallback.builder().name("headroom_model_evictions").help("Model weights evicted from a device")
                .callback(cb -> cb.call(devices.stream().mapToLong(d -> d.residency().counts()[2]).sum())).register(registry);
        jobPhaseSeconds = Counter.builder().name("headroom_job_phase_seconds")
                .help("Time jobs spent by phase (queue, admit, read, session, weights, upscale, finish_file, hash, store; conv_plans, conv_tuning, "
                        + "progress and encode_wait within upscale; encode_cpu on the encoder's threads), summed over jobs").labelNames("phase").register(registry);
        jobSeconds = Histogram.builder().name("headroom_job_duration_seconds").help("Run time of jobs that ran, by outcome").labelNames("outcome")
                .classicOnly().classicUpperBounds(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800).register(registry);
        admissionWaitSeconds = Histogram.builder().name("headroom_admission_wait_seconds").help("Time from submission to admission")
                .classicOnly().classicUpperBounds(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600).register(registry);
        // every label value a dashboard or alert names exists from the start, at zero
        for (String o : new String[] {"succeeded", "failed", "cancelled", "timed_out", "requeued", "abandoned"}) jobSeconds.labelValues(o);
        for (String st : new String[] {"400", "401", "413", "415", "422"}) refused.labelValues(st);
        GaugeWithCallback.builder().name("headroom_jobs").help("Jobs in the store by state").labelNames("state")
                .callback(cb -> store.counts().forEach((s, n) -> cb.call(n, s.name()))).register(registry);
        GaugeWithCallback.builder().name("headroom_queue_depth").help("Jobs waiting for admission")
                .callback(cb -> cb.call(store.counts().get(JobState.queued))).register(registry);
        GaugeWithCallback.builder().name("headroom_queue_oldest_wait_seconds").help("How long the oldest queued job has waited")
                .callback(cb -> {
                    long t = store.oldestQueued();
                    cb.call(t == 0 ? 0 : Math.max(0, now.getAsLong() - t) / 1000.0);
                }).register(registry);
        GaugeWithCallback.builder().name("headroom_device_memory_bytes").help("Device memory: budget, reserved by running jobs, and live bytes by category")
                .labelNames("device", "category").callback(cb -> {
                    for (DeviceSlot d : devices) {
                        cb.call(d.budget(), d.name(), "budget");
                        cb.call(d.reserved(), d.name(), "reserved");
                        d.usedByCategory().forEach((k, v) -> cb.call(v, d.name(), k));
                    }
                }).register(registry);
        GaugeWithCallback.builder().name("headroom_device_pressure_level").help("Memory pressure: 0 optimal, 1 elevated, 2 warning, 3 critical")
                .labelNames("device").callback(cb -> {
                    for (DeviceSlot d : devices) cb.call(d.pressure().ordinal(), d.name());
                }).register(registry);
        GaugeWithCallback.builder().name("headroom_device_running_jobs").help("Jobs running on each device").labelNames("device")
                .callback(cb -> {
                    for (DeviceSlot d : devices) cb.call(d.runningCount(), d.name());
                }).register(registry);
        GaugeWithCallback.builder().name("headroom_device_finishing_jobs").help("Jobs that left each device and are finishing their files on the host")
                .labelNames("device").callback(cb -> {
                    for (DeviceSlot d : devices) cb.call(d.finishingCount(), d.name());
                }).register(registry);
        CounterWithCallback.builder().name("headroom_device_allocator_events")
                .help("Each device's memory allocator: segments backed and given back by the driver, and cache flushes (each waits for the device's streams)")
                .labelNames("device", "event").callback(cb -> {
                    for (DeviceSlot d : devices) {
                        var s = d.device().memory().stats();
                        cb.call(s.driverAllocations(), d.name(), "driver_allocations");
                        cb.call(s.driverFrees(), d.name(), "driver_frees");
                        cb.call(s.cacheFlushes(), d.name(), "cache_flushes");
                    }
                }).register(registry);
        GaugeWithCallback.builder().name("headroom_models_loaded").help("Models loaded and shared by jobs")
                .callback(cb -> cb.call(models.loaded().size())).register(registry);
    }

    /**
     * The fleet's view from this server: this node's name, and from the shared registry the nodes
     * alive and gone and the jobs each runs (the queue depth above is already the shared queue's).
     */
    void fleet(String self, java.util.function.Supplier<List<JobStore.Node>> nodes, long aliveMillis) {
        GaugeWithCallback.builder().name("headroom_node_info").help("This server's node name").labelNames("node")
                .callback(cb -> cb.call(1, self)).register(registry);
        GaugeWithCallback.builder().name("headroom_nodes").help("Servers in the node registry, alive (heartbeat within 3 beats) or gone")
                .labelNames("state").callback(cb -> {
                    long alive = 0, gone = 0;
                    for (JobStore.Node n : nodes.get()) {
                        if (n.ageMillis() <= aliveMillis) alive++;
                        else gone++;
                    }
                    cb.call(alive, "alive");
                    cb.call(gone, "gone");
                }).register(registry);
        GaugeWithCallback.builder().name("headroom_node_running_jobs").help("Jobs each registered server runs, at its last heartbeat")
                .labelNames("node").callback(cb -> {
                    for (JobStore.Node n : nodes.get()) cb.call(n.running(), n.name());
                }).register(registry);
    }

    /** For metrics registered elsewhere (the dashboard's alerts). */
    PrometheusRegistry registry() {
        return registry;
    }

    public String contentType() {
        return PrometheusTextFormatWriter.CONTENT_TYPE;
    }

    public void write(OutputStream out) throws IOException {
        PrometheusTextFormatWriter.create().write(out, registry.scrape());
    }
}
