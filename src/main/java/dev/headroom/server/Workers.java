package dev.headroom.server;

import dev.headroom.core.sched.Placement;
import dev.headroom.core.sched.Scheduling;
import dev.headroom.core.sched.Waiting;
import dev.headroom.runtime.TempFiles;
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
 * policy against the device's ledger, and a platform thread per admitted job that runs it through
 * the {@link JobRunner} (platform, not virtual: see {@link DeviceSlot#onPlatformThread}).
 *
 * <p>Admission (claim in the store, reserve on the device) and cancellation take one lock, so a
 * cancel either finds the job queued and cancels it in the store, or finds it running and flags
 * it: there is no moment between the two where a cancel is lost. A running job looks at its flag
 * after every tile, as it does at its deadline (the per-job timeout) and at a shutdown that ran
 * out of grace.
 *
 * <p><b>Leases and heartbeats.</b> Each job runs under a lease in the store. Every heartbeat
 * (a third of the lease) a thread renews this server's leases (learning of cancels made through
 * other servers of a fleet), registers the node, and hands back jobs of servers whose lease ran out
 * ({@link JobStore#recover}). A job whose lease this server could not renew in time (the store was
 * unreachable) stops at its next tile and is abandoned, before any other server may take it; a job
 * the store says is no longer ours is abandoned too. So a job never runs on two servers at once
 * (beyond the tile in progress), and only the lease holder writes its result.
 */
public final class Workers implements AutoCloseable {
    static final int OVERLAP = 16;
    /**
     * How often running jobs' progress goes to the store. A job's thread only notes it: writing it
     * at every tile put a durable store write (SQLite: an fsync, under the store's one lock that
     * every job of every device shares) between the tiles of each job.
     */
    static final long PROGRESS_MILLIS = 200;
    /**
     * How long a job whose model is resident on another device of this server, and not on this
     * one where loading it would evict another model, is left for that device while it has a free
     * slot (it runs there without loading the weights); past it, any device that can admit it takes it.
     */
    static final long RESIDENT_ELSEWHERE_MILLIS = 2_000;
    private static final int POISON_AFTER = 2;
    /** Ages of a node's last heartbeat past which it counts as gone, in heartbeats. */
    static final int HEARTBEATS_ALIVE = 3;

    /** A job running on a device, with what may stop it. */
    private static final class Running {
        final Job job;
        final DeviceSlot device;
        final long deadline;
        /** System.nanoTime() by which the lease must be renewed again, or this server abandons the job. */
        volatile long leaseDeadline;
        final long claimedNanos;
        volatile boolean cancelled, timedOut, shuttingDown, lost;
        volatile Thread thread;
        /** Nanoseconds by phase (queue, admit, read, upscale, store, ...), in the order first reported. */
        final Map<String, Long> phases = java.util.Collections.synchronizedMap(new java.util.LinkedHashMap<>());
        /** The last progress reported, written to the store off the job's thread. */
        final LatestProgress progress = new LatestProgress();

        void phase(String name, long nanos) {
            phases.merge(name, nanos, Long::sum);
        }

        Running(Job job, DeviceSlot device, long deadline, long claimedNanos, long leaseNanos) {
            this.job = job;
            this.device = device;
            this.deadline = deadline;
            this.claimedNanos = claimedNanos;
            this.leaseDeadline = claimedNanos + leaseNanos;
        }

        boolean leaseRanOut() {
            if (System.nanoTime() > leaseDeadline) lost = true;
            return lost;
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
    private final JobStore.Owner owner;
    private final long leaseMillis, heartbeatMillis;
    private final long started = System.currentTimeMillis();
    private volatile String url;
    /** Models resident on other live nodes that have a free slot, from the last heartbeat. */
    private volatile Set<String> residentOnIdleOthers = Set.of();
    private volatile boolean storeDown;
    private final Object admission = new Object();
    private final Map<String, Running> running = new ConcurrentHashMap<>();
    /** The schedulers and the progress flusher, interrupted by {@link #close}. */
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
        this.owner = new JobStore.Owner(cfg.fleet().node(), UUID.randomUUID().toString());
        this.leaseMillis = cfg.fleet().lease().toMillis();
        this.heartbeatMillis = Math.max(100, leaseMillis / 3);
    }

    /** Hands back jobs a crash left running (or fails them by the poison rule), then starts the schedulers and the heartbeat. */
    public JobStore.Recovery start() {
        JobStore.Recovery r = store.recover(owner, clock.getAsLong(), POISON_AFTER);
        store.heartbeat(node());
        for (DeviceSlot d : devices) {
            Thread t = Thread.ofPlatform().daemon().name("headroom-scheduler-" + d.name()).start(() -> schedule(d));
            schedulers.add(t);
        }
        // interrupted by close() with the schedulers: no progress write to a store being closed after it
        schedulers.add(Thread.ofPlatform().daemon().name("headroom-progress").start(() -> {
            while (!stopped) {
                try {
                    Thread.sleep(PROGRESS_MILLIS);
                } catch (InterruptedException e) {
                    return;
                }
                for (Running x : running.values()) {
                    if (stopped) return;
                    try {
                        flushProgress(x);
                    } catch (RuntimeException e) {
                        storeUnreachable(e);   // progress is for show; the jobs go on under their leases
                    }
                }
            }
        }));
        Thread.ofPlatform().daemon().name("headroom-heartbeat").start(() -> {
            long next = System.nanoTime();
            while (!stopped) {
                try {
                    // at a fixed rate: a slow beat does not push the next renewal later
                    next += TimeUnit.MILLISECONDS.toNanos(heartbeatMillis);
                    long wait = next - System.nanoTime();
                    if (wait > 0) TimeUnit.NANOSECONDS.sleep(wait);
                    else next = System.nanoTime();
                    beat();
                } catch (InterruptedException e) {
                    return;
                } catch (RuntimeException e) {
                    storeUnreachable(e);
                }
            }
        });
        return r;
    }

    /**
     * One heartbeat: renew this server's leases (a job no longer ours is abandoned; a cancel made
     * on another server reaches the job here), register the node, hand back other servers' jobs
     * whose lease ran out, and note where models are resident.
     */
    private void beat() {
        long t0 = System.nanoTime();
        List<String> ids = List.copyOf(running.keySet());
        Map<String, Boolean> held = store.renew(owner, ids, leaseMillis, clock.getAsLong());
        // only the jobs this renewal named: one claimed meanwhile is in the running map but not in the answer, and is not lost
        // (judging by claim time instead lost jobs whose claim began before the renewal and ended after its list was taken)
        for (String id : ids) {
            Running r = running.get(id);
            if (r == null) continue;   // ended meanwhile
            Boolean cancel = held.get(id);
            if (cancel == null) {
                r.lost = true;   // taken from us
            } else {
                r.leaseDeadline = t0 + TimeUnit.MILLISECONDS.toNanos(leaseMillis - heartbeatMillis / 2);
                if (cancel) r.cancelled = true;
            }
        }
        store.heartbeat(node());
        JobStore.Recovery rec = store.recover(owner, clock.getAsLong(), POISON_AFTER);
        if (rec.requeued() + rec.failed() > 0) {
            System.err.println("headroom serve: leases ran out: " + rec.requeued() + " jobs went back to the queue and " + rec.failed()
                    + " failed (interrupted twice)");
            poke();
        }
        residentOnIdleOthers = NodeReports.residentOnIdleOthers(store.nodes(), owner.node(), aliveMillis());
        if (storeDown) {
            storeDown = false;
            System.err.println("headroom serve: the job store answers again; claiming resumes");
            poke();
        }
    }

    private void storeUnreachable(RuntimeException e) {
        if (stopped) return;
        if (!(e instanceof JobStore.Unavailable)) {
            System.err.println("headroom serve: " + Thread.currentThread().getName() + ": " + e.getMessage());
            return;
        }
        if (storeDown) return;
        storeDown = true;
        System.err.println("headroom serve: the job store is unreachable (" + e.getMessage() + "); no new jobs are claimed, running jobs keep their "
                + "leases for up to " + leaseMillis / 1000.0 + " s");
    }

    /** This server as the node registry shows it. */
    JobStore.Node node() {
        return NodeReports.of(owner, url, devices, started, !(draining || stopped));
    }

    /** The URL other nodes and the registry show for this server. */
    public void advertise(String url) {
        this.url = url;
    }

    /** How long a node may go without a heartbeat before it counts as gone. */
    long aliveMillis() {
        return HEARTBEATS_ALIVE * heartbeatMillis;
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
                storeUnreachable(e);
            }
        }
    }

    /** Admits the policy's choice on device d if it fits now; false when nothing was admitted. */
    private boolean admitOne(DeviceSlot d) {
        Running r;
        long t0 = System.nanoTime();
        synchronized (admission) {
            if (draining || stopped) return false;
            if (d.runningCount() >= d.maxRunning()) return false;
            long now = clock.getAsLong(), claimedNanos = System.nanoTime();
            Set<String> resident = d.residentModels();
            Set<String> elsewhere = residentOnIdleOthers;
            // shapes whose plans a kept session has (only if one is idle now: else the job opens a new session)
            Set<String> warm = d.hasIdleSession() ? d.warmShapes() : Set.of();
            // models resident on this server's other devices that have a free slot: such a device takes the job without loading
            Set<String> residentOnFreeDevices = new java.util.HashSet<>();
            for (DeviceSlot o : devices) {
                if (o != d && o.runningCount() < o.maxRunning()) residentOnFreeDevices.addAll(o.residentModels());
            }
            long room = d.roomWithoutEviction();
            var state = new Scheduling.DeviceState(d.headroom(), d.runningCount(), resident, warm, room);
            // the store offers candidates in priority-with-aging order; this device's ledger decides which it can admit
            Optional<Job> claimed = store.claimNext(owner, leaseMillis, now, queued -> {
                List<Waiting> waiting = new ArrayList<>();
                for (Job j : queued) {
                    if (Placement.leaveToOthers(j.model(), now - j.created(), resident, elsewhere, 2 * heartbeatMillis)) continue;
                    long need = d.need(j, resident);
                    // only a load that would evict is worth leaving to a device that has the model (else both GPUs get every model)
                    if (need > room && Placement.leaveToOthers(j.model(), now - j.created(), resident, residentOnFreeDevices, RESIDENT_ELSEWHERE_MILLIS)) {
                        continue;
                    }
                    waiting.add(new Waiting(j.id(), j.priority(), j.created(), j.seq(), j.model(), need, DeviceSlot.shape(j)));
                }
                Optional<Waiting> next = Scheduling.next(waiting, now, state, policy.withMaxRunning(d.maxRunning()));
                // idle models' weights count as room: evict them now if this job needs it
                if (next.isEmpty() || !d.makeRoom(next.get().peakBytes())) return Optional.empty();
                return next.map(Waiting::id);
            });
            if (claimed.isEmpty()) return false;
            Job job = claimed.get();
            long reserved = d.reservation(job.peakBytes(), job.weightBytes());
            long deadline = cfg.jobTimeout().isZero() ? Long.MAX_VALUE : now + cfg.jobTimeout().toMillis();
            r = new Running(job, d, deadline, claimedNanos, TimeUnit.MILLISECONDS.toNanos(leaseMillis - heartbeatMillis / 2));
            try {
                d.reserve(job.id(), reserved);
                d.holdSession(job);
                running.put(job.id(), r);
                r.phase("queue", TimeUnit.MILLISECONDS.toNanos(Math.max(0, now - job.created())));
                r.phase("admit", System.nanoTime() - t0);
                metrics.admissionWaitSeconds.observe(Math.max(0, now - job.created()) / 1000.0);
                events.emit(job.id(), "admitted", Map.of("device", d.name(), "node", owner.node(), "reserved_bytes", reserved, "tile", job.tile(),
                        "attempts", job.attempts()));
                // a platform thread: a job makes CUDA calls, whose current context belongs to the OS thread, and a virtual
                // thread may move to another carrier at any blocking point (file I/O, a lock) between two of them
                r.thread = Thread.ofPlatform().daemon().name("headroom-job-" + r.job.id()).start(() -> run(r));
            } catch (RuntimeException | Error e) {
                // claimed but not running: without this the job stayed "running" with its lease renewed by every heartbeat, forever
                running.remove(job.id());
                d.release(job.id());
                d.unhold(job.id());
                store.requeue(job.id(), owner);
                System.err.println("headroom serve: job " + job.id() + " went back to the queue: it could not be started (" + e + ")");
                return false;
            }
        }
        return true;
    }

    private void run(Running r) {
        Job job = r.job;
        long t0 = System.nanoTime();
        String outcome = "failed";
        // the result is made under a name of this run's own and moved into place only while this server holds the lease
        Path staged = dir.staging(job.id(), owner.id());
        r.phase("start", t0 - r.claimedNanos);
        try {
            ModelCatalog.Loaded m = models.get(job.model(), clock.getAsLong());
            r.phase("model", System.nanoTime() - t0);
            JobRunner.Outcome o = runner.run(new JobRunner.Request(job, m, dir.upload(job.id()), staged, Submissions.encoding(format(job)),
                    r.device.reservation(job.peakBytes(), job.weightBytes()), cfg.maxPixels(), OVERLAP), r.device, new JobRunner.Control() {
                public boolean stop() {
                    if (clock.getAsLong() > r.deadline) r.timedOut = true;
                    return r.cancelled || r.timedOut || r.shuttingDown || r.leaseRanOut();
                }

                public void progress(int done, int total) {
                    long p0 = System.nanoTime();
                    r.progress.note(done, total);   // the store has it within PROGRESS_MILLIS (flushProgress)
                    events.emit(job.id(), "tile", Map.of("done", done, "total", total));
                    r.phase("progress", System.nanoTime() - p0);
                }

                public void phase(String name, long nanos) {
                    r.phase(name, nanos);
                }
            });
            r.device.release(job.id());   // the job's memory is free: no terminal state is published with a reservation left
            long h0 = System.nanoTime();
            String hash = DataDir.sha256(staged);
            long bytes = Files.size(staged);
            Path out = dir.result(job.id());
            long s0 = System.nanoTime();
            r.phase("hash", s0 - h0);
            try {
                flushProgress(r);
            } catch (RuntimeException e) {
                storeUnreachable(e);   // progress is for show; the result is what must reach the store
            }
            // renewing proves the job is still ours and gives a whole lease before anyone else may take it
            if (!durably(r, () -> store.renew(owner, List.of(job.id()), leaseMillis, clock.getAsLong()).containsKey(job.id()))) {
                r.lost = true;
                throw new JobRunner.Stopped();
            }
            DataDir.move(staged, out);
            if (durably(r, () -> store.finish(job.id(), owner, JobState.succeeded, null, hash, bytes, clock.getAsLong()))) {
                outcome = "succeeded";
                long c0 = System.nanoTime();
                r.phase("store", c0 - s0);
                remember(job, out, hash, bytes);
                r.phase("cache", System.nanoTime() - c0);
                r.phase("total", System.nanoTime() - r.claimedNanos);
                events.emit(job.id(), "succeeded", Map.of("result_bytes", bytes, "etag", hash, "phases_ms", phasesMillis(r)));
            } else {
                r.lost = true;
                outcome = abandon(job);
            }
        } catch (JobRunner.Stopped e) {
            if (r.lost) {
                outcome = abandon(job);
            } else if (r.timedOut) {
                finish(job, JobState.failed, "the job ran longer than the server's --job-timeout of " + cfg.jobTimeout().toSeconds()
                        + " s; send a smaller image or ask for a longer timeout");
                outcome = "timed_out";
            } else if (r.cancelled) {
                finish(job, JobState.cancelled, null);
                outcome = "cancelled";
            } else {
                outcome = requeueForShutdown(job, r);
            }
        } catch (DeviceOutOfMemory e) {
            metrics.outOfMemory.inc();
            finish(job, JobState.failed, firstLine(e.getMessage()));
        } catch (Exception | OutOfMemoryError e) {
            if (!r.lost && (r.shuttingDown || draining || TempFiles.closing())) {
                // SIGTERM's clean-up refused the job's output file (or stopped it some other way): not the job's fault
                outcome = requeueForShutdown(job, r);
            } else {
                String msg = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
                finish(job, JobState.failed, firstLine(msg));
            }
        } finally {
            try {
                Files.deleteIfExists(staged);
            } catch (IOException ignored) {
                // a temporary: the next start cleans it
            }
            r.device.release(job.id());
            r.device.unhold(job.id());
            running.remove(job.id());
            metrics.jobSeconds.labelValues(outcome).observe((System.nanoTime() - t0) / 1e9);
            synchronized (r.phases) {
                r.phases.forEach((phase, nanos) -> metrics.jobPhaseSeconds.labelValues(phase).inc(nanos / 1e9));
            }
            poke();
        }
    }

    /** Writes a running job's latest progress to the store if it has not been written yet. */
    private void flushProgress(Running r) {
        r.progress.flush((done, total) -> store.progress(r.job.id(), done, total));
    }

    /** A job's phases in milliseconds (0.1 ms), for its end event. */
    private static Map<String, Double> phasesMillis(Running r) {
        Map<String, Double> out = new java.util.LinkedHashMap<>();
        synchronized (r.phases) {
            r.phases.forEach((k, v) -> out.put(k, Math.round(v / 1e5) / 10.0));
        }
        return out;
    }

    /** Shutdown: the job goes back to the queue, not counted as an attempt. */
    private String requeueForShutdown(Job job, Running r) {
        r.device.release(job.id());
        durably(r, () -> {
            store.requeue(job.id(), owner);
            return true;
        });
        events.emit(job.id(), "requeued", Map.of("reason", "server shutting down"));
        return "requeued";
    }

    /** The task a job's params name (upscale when they name none: jobs stored before decode existed). */
    static String task(Job job) {
        try {
            return HttpApi.JSON.readTree(job.params()).path("task").asText("upscale");
        } catch (IOException e) {
            return "upscale";
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
        Running r = running.get(job.id());
        if (r != null && r.lost) {
            abandon(job);
            return;
        }
        if (r != null) {
            r.device.release(job.id());   // before the state changes: a client that sees "failed" sees the memory free
            try {
                flushProgress(r);   // where it stopped
            } catch (RuntimeException e) {
                storeUnreachable(e);
            }
        }
        if (r == null ? store.finish(job.id(), owner, to, error, null, 0, clock.getAsLong())
                : durably(r, () -> store.finish(job.id(), owner, to, error, null, 0, clock.getAsLong()))) {
            events.emit(job.id(), to.name(), error == null ? Map.of() : Map.of("error", error));
        }
    }

    /** A job this server no longer holds: its lease ran out or another server took it. It ends here without a word to the store. */
    private String abandon(Job job) {
        events.emit(job.id(), "abandoned", Map.of("reason", "this server lost the job's lease; another server runs it"));
        System.err.println("headroom serve: job " + job.id() + " abandoned: its lease ran out while the job store was unreachable, or another "
                + "server took it");
        return "abandoned";
    }

    /**
     * Runs a store call, retrying while the store is unreachable, as long as this server still holds
     * the job's lease by its own clock; false when it gave up (the job is then abandoned).
     */
    private boolean durably(Running r, java.util.function.BooleanSupplier call) {
        while (true) {
            try {
                return call.getAsBoolean();
            } catch (RuntimeException e) {
                storeUnreachable(e);
                if (r.leaseRanOut() || stopped) return false;
                sleep(200);
            }
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

    public JobStore.Owner owner() {
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
