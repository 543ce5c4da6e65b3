package dev.headroom.server;

import dev.headroom.core.sched.Scheduling;
import dev.headroom.core.sched.Waiting;
import dev.headroom.runtime.memory.DeviceOutOfMemory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * The workers: one scheduler thread per device that admits queued jobs by {@link Scheduling}'s
 * policy against the device's ledger, and a virtual thread per admitted job that runs it through
 * the {@link JobRunner}.
 *
 * <p>Admission (claim in the store, reserve on the device) and cancellation take one lock, so a
 * cancel either finds the job queued and cancels it in the store, or finds it running and flags
 * it: there is no moment between the two where a cancel is lost. A running job looks at its flag
 * after every tile, as it does at its deadline (the per-job timeout) and at a shutdown that ran
 * out of grace.
 */
public final class Workers implements AutoCloseable {
    static final int OVERLAP = 16;
    private static final int CANDIDATES = 1000;
    private static final int POISON_AFTER = 2;
    private static final long LEASE_MILLIS = 60_000;

    /** A job running on a device, with what may stop it. */
    private static final class Running {
        final Job job;
        final DeviceSlot device;
        final long deadline;
        volatile boolean cancelled, timedOut, shuttingDown;
        volatile Thread thread;

        Running(Job job, DeviceSlot device, long deadline) {
            this.job = job;
            this.device = device;
            this.deadline = deadline;
        }
    }

    private final ServeConfig cfg;
    private final DataDir dir;
    private final JobStore store;
    private final ModelCatalog models;
    private final List<DeviceSlot> devices;
    private final JobRunner runner;
    private final JobEvents events;
    private final Metrics metrics;
    private final LongSupplier clock;
    private final Scheduling.Config policy;
    private final String owner = "headroom-" + UUID.randomUUID();
    private final Object admission = new Object();
    private final Map<String, Running> running = new ConcurrentHashMap<>();
    private final List<Thread> schedulers = new ArrayList<>();
    private volatile boolean draining, stopped;
    private final Object wake = new Object();
    private long changes;

    public Workers(ServeConfig cfg, DataDir dir, JobStore store, ModelCatalog models, List<DeviceSlot> devices, JobRunner runner,
                   JobEvents events, Metrics metrics, LongSupplier clock, Scheduling.Config policy) {
        this.cfg = cfg;
        this.dir = dir;
        this.store = store;
        this.models = models;
        this.devices = devices;
        this.runner = runner;
        this.events = events;
        this.metrics = metrics;
        this.clock = clock;
        this.policy = policy;
    }

    /** Hands back jobs a crash left running (or fails them by the poison rule), then starts the schedulers. */
    public JobStore.Recovery start() {
        JobStore.Recovery r = store.recover(owner, clock.getAsLong(), POISON_AFTER);
        for (DeviceSlot d : devices) {
            Thread t = Thread.ofPlatform().daemon().name("headroom-scheduler-" + d.name()).start(() -> schedule(d));
            schedulers.add(t);
        }
        Thread.ofPlatform().daemon().name("headroom-leases").start(() -> {
            while (!stopped) {
                try {
                    Thread.sleep(LEASE_MILLIS / 4);
                    store.renew(owner, clock.getAsLong() + LEASE_MILLIS);
                } catch (InterruptedException e) {
                    return;
                } catch (RuntimeException e) {
                    // the store is closing; the next renewal or the next start sorts it out
                }
            }
        });
        return r;
    }

    /** Something changed (a job queued or ended, a priority, pause): schedulers look again. */
    public void poke() {
        synchronized (wake) {
            changes++;
            wake.notifyAll();
        }
    }

    private void schedule(DeviceSlot d) {
        long seen = -1;
        while (!stopped) {
            try {
                synchronized (wake) {
                    // aging changes the order over time, so look again at least every quarter second
                    if (seen == changes) wake.wait(250);
                    seen = changes;
                }
                while (!stopped && !draining && !store.paused() && admitOne(d)) {
                    // admitted one: try for another
                }
            } catch (InterruptedException e) {
                return;
            } catch (RuntimeException e) {
                if (!stopped) System.err.println("headroom serve: scheduler for " + d.name() + ": " + e.getMessage());
            }
        }
    }

    /** Admits the policy's choice on device d if it fits now; false when nothing was admitted. */
    private boolean admitOne(DeviceSlot d) {
        Running r;
        synchronized (admission) {
            if (draining || stopped) return false;
            List<Job> queued = store.queued(CANDIDATES);
            if (queued.isEmpty()) return false;
            long now = clock.getAsLong();
            Set<String> resident = d.residentModels();
            List<Waiting> waiting = new ArrayList<>();
            for (Job j : queued) waiting.add(new Waiting(j.id(), j.priority(), j.created(), j.seq(), j.model(), d.need(j, resident)));
            var state = new Scheduling.DeviceState(d.headroom(), d.runningCount(), resident);
            Optional<Waiting> next = Scheduling.next(waiting, now, state, policy.withMaxRunning(d.maxRunning()));
            if (next.isEmpty()) return false;
            Waiting w = next.get();
            // idle models' weights count as room: evict them now if this job needs it
            if (!d.makeRoom(w.peakBytes())) return false;
            if (!store.claim(w.id(), owner, now + LEASE_MILLIS, now)) return true;
            Job job = store.get(w.id()).orElseThrow();
            d.reserve(job.id(), d.reservation(job.peakBytes(), job.weightBytes()));
            long deadline = cfg.jobTimeout().isZero() ? Long.MAX_VALUE : now + cfg.jobTimeout().toMillis();
            r = new Running(job, d, deadline);
            running.put(job.id(), r);
            metrics.admissionWaitSeconds.observe(Math.max(0, now - job.created()) / 1000.0);
            events.emit(job.id(), "admitted", Map.of("device", d.name(), "reserved_bytes", d.reservation(job.peakBytes(), job.weightBytes()), "tile", job.tile(),
                    "attempts", job.attempts()));
        }
        r.thread = Thread.ofVirtual().name("headroom-job-" + r.job.id()).start(() -> run(r));
        return true;
    }

    private void run(Running r) {
        Job job = r.job;
        long t0 = System.nanoTime();
        String outcome = "failed";
        try {
            ModelCatalog.Loaded m = models.get(job.model(), clock.getAsLong());
            Path out = dir.result(job.id());
            JobRunner.Outcome o = runner.run(new JobRunner.Request(job, m, dir.upload(job.id()), out, Submissions.encoding(format(job)), r.device.reservation(job.peakBytes(), job.weightBytes()),
                    cfg.maxPixels(), OVERLAP), r.device, new JobRunner.Control() {
                public boolean stop() {
                    if (clock.getAsLong() > r.deadline) r.timedOut = true;
                    return r.cancelled || r.timedOut || r.shuttingDown;
                }

                public void progress(int done, int total) {
                    store.progress(job.id(), done, total);
                    events.emit(job.id(), "tile", Map.of("done", done, "total", total));
                }
            });
            String hash = DataDir.sha256(out);
            long bytes = Files.size(out);
            if (store.finish(job.id(), JobState.succeeded, null, hash, bytes, clock.getAsLong())) {
                outcome = "succeeded";
                remember(job, out, hash, bytes);
                events.emit(job.id(), "succeeded", Map.of("result_bytes", bytes, "etag", hash));
            }
        } catch (JobRunner.Stopped e) {
            if (r.timedOut) {
                finish(job, JobState.failed, "the job ran longer than the server's --job-timeout of " + cfg.jobTimeout().toSeconds()
                        + " s; send a smaller image or ask for a longer timeout");
                outcome = "timed_out";
            } else if (r.cancelled) {
                finish(job, JobState.cancelled, null);
                outcome = "cancelled";
            } else {
                store.requeue(job.id());   // shutdown: back to the queue, not counted as an attempt
                events.emit(job.id(), "requeued", Map.of("reason", "server shutting down"));
                outcome = "requeued";
            }
        } catch (DeviceOutOfMemory e) {
            metrics.outOfMemory.inc();
            finish(job, JobState.failed, firstLine(e.getMessage()));
        } catch (Exception | OutOfMemoryError e) {
            String msg = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
            finish(job, JobState.failed, firstLine(msg));
        } finally {
            r.device.release(job.id());
            running.remove(job.id());
            metrics.jobSeconds.labelValues(outcome).observe((System.nanoTime() - t0) / 1e9);
            poke();
        }
    }

    /** The format a job's params name (png when they name none). */
    static String format(Job job) {
        try {
            return HttpApi.JSON.readTree(job.params()).path("format").asText("png");
        } catch (IOException e) {
            return "png";
        }
    }

    private static String firstLine(String s) {
        return s.lines().findFirst().orElse(s);
    }

    private void finish(Job job, JobState to, String error) {
        try {
            Files.deleteIfExists(dir.result(job.id()));
        } catch (IOException ignored) {
            // a result of a job that did not succeed is never served; the next start cleans temporaries
        }
        if (store.finish(job.id(), to, error, null, 0, clock.getAsLong())) {
            events.emit(job.id(), to.name(), error == null ? Map.of() : Map.of("error", error));
        }
    }

    /** Puts a result into the cache (a hard link, so the bytes are stored once) and trims the cache to its size. */
    private void remember(Job job, Path out, String hash, long bytes) {
        if (cfg.cacheBytes() <= 0 || job.cacheKey() == null || bytes > cfg.cacheBytes()) return;
        try {
            Path c = dir.cached(job.cacheKey());
            Path tmp = c.resolveSibling("." + c.getFileName() + ".tmp");
            Files.deleteIfExists(tmp);
            try {
                Files.createLink(tmp, out);
            } catch (UnsupportedOperationException | IOException e) {
                Files.copy(out, tmp);
            }
            DataDir.move(tmp, c);
            store.cachePut(new JobStore.CacheEntry(job.cacheKey(), hash, bytes, clock.getAsLong()));
            for (JobStore.CacheEntry e : store.cacheEvict(cfg.cacheBytes())) Files.deleteIfExists(dir.cached(e.key()));
        } catch (IOException e) {
            // the cache is an optimisation: a result that cannot be cached is still the job's
        }
    }

    /**
     * Cancels a job: queued ones at once, running ones at their next tile. Returns the state after
     * the call, or empty for an unknown id.
     */
    public Optional<JobState> cancel(String id) {
        synchronized (admission) {
            Optional<JobState> s = store.cancel(id, clock.getAsLong());
            Running r = running.get(id);
            if (r != null) r.cancelled = true;
            if (s.isPresent() && s.get() == JobState.cancelled && r == null) events.emit(id, "cancelled", Map.of());
            return s;
        }
    }

    public boolean isRunning(String id) {
        return running.containsKey(id);
    }

    public String owner() {
        return owner;
    }

    /**
     * Stops admitting, gives running jobs the grace period to finish, then stops the rest at their
     * next tile and hands them back to the queue; waits for them to let go of the device.
     */
    public void drain(Duration grace) {
        draining = true;
        poke();
        long until = System.nanoTime() + grace.toNanos();
        while (!running.isEmpty() && System.nanoTime() < until) sleep(50);
        for (Running r : running.values()) r.shuttingDown = true;
        long hard = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!running.isEmpty() && System.nanoTime() < hard) sleep(50);
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() {
        stopped = true;
        for (Thread t : schedulers) t.interrupt();
    }
}
