package dev.headroom.server;

import dev.headroom.core.sched.Scheduling;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * The workers: one scheduler thread per device that admits queued jobs ({@link Admission}), a
 * platform thread per admitted job that runs it and ends it in the store ({@link JobThread};
 * platform, not virtual: see {@link DeviceSlot#onPlatformThread}), a thread that writes running
 * jobs' progress, and the heartbeat ({@link Leases}). Cancels and draining are here.
 *
 * <p>A running job ({@link RunningJob}) looks at its flags after every tile: a cancel, its deadline
 * (the per-job timeout), a shutdown that ran out of grace, the loss of its lease.
 *
 * <p><b>Leases and heartbeats.</b> Each job runs under a lease in the store. Every heartbeat
 * (a third of the lease) a thread renews this server's leases ({@link Leases}: learning of cancels
 * made through other servers of a fleet), registers the node, and hands back jobs of servers whose
 * lease ran out ({@link JobStore#recover}). A job whose lease this server could not renew in time
 * (the store was unreachable) stops at its next tile and is abandoned, before any other server may
 * take it; a job the store says is no longer ours is abandoned too. So a job never runs on two
 * servers at once (beyond the tile in progress), and only the lease holder writes its result.
 */
public final class Workers implements AutoCloseable {
    static final int OVERLAP = 16;
    /**
     * How often running jobs' progress goes to the store. A job's thread only notes it: writing it
     * at every tile put a durable store write (SQLite: an fsync, under the store's one lock that
     * every job of every device shares) between the tiles of each job.
     */
    static final long PROGRESS_MILLIS = 200;
    private static final int POISON_AFTER = 2;
    /** Ages of a node's last heartbeat past which it counts as gone, in heartbeats. */
    static final int HEARTBEATS_ALIVE = 3;

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
    private final Map<String, RunningJob> running = new ConcurrentHashMap<>();
    private final Leases leases;
    private final Admission admission;
    private final JobThread jobs;
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
        this.leases = new Leases(store, owner, running, leaseMillis, heartbeatMillis, clock);
        this.jobs = new JobThread(cfg, dir, store, models, runner, events, metrics, clock, owner, running, leaseMillis, new JobThread.Host() {
            public void storeUnreachable(RuntimeException e) {
                Workers.this.storeUnreachable(e);
            }

            public void poke() {
                Workers.this.poke();
            }

            public boolean draining() {
                return draining;
            }

            public boolean stopped() {
                return stopped;
            }
        });
        // a platform thread per job: a job makes CUDA calls, whose current context belongs to the OS thread, and a virtual
        // thread may move to another carrier at any blocking point (file I/O, a lock) between two of them
        this.admission = new Admission(store, owner, devices, policy, running, leases, leaseMillis, heartbeatMillis, cfg.jobTimeout(), events,
                metrics, clock, () -> !(draining || stopped), () -> residentOnIdleOthers,
                r -> Thread.ofPlatform().daemon().name("headroom-job-" + r.job.id()).start(() -> jobs.run(r)));
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
                for (RunningJob x : running.values()) {
                    if (stopped) return;
                    try {
                        jobs.flushProgress(x);
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
        leases.renew();
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
                while (!stopped && !draining && !store.paused() && admission.admitOne(d)) {
                    // admitted one: try for another
                }
            } catch (InterruptedException e) {
                return;
            } catch (RuntimeException e) {
                storeUnreachable(e);
            }
        }
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

    /**
     * Cancels a job: queued ones at once, running ones at their next tile. Returns the state after
     * the call, or empty for an unknown id.
     */
    public Optional<JobState> cancel(String id) {
        synchronized (admission.lock) {
            Optional<JobState> s = store.cancel(id, clock.getAsLong());
            RunningJob r = running.get(id);
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
        for (RunningJob r : running.values()) r.shuttingDown = true;
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
