package dev.headroom.server;

import dev.headroom.runtime.TempFiles;
import dev.headroom.runtime.memory.DeviceOutOfMemory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.function.LongSupplier;

/**
 * Runs one admitted job on its own thread through the {@link JobRunner}, and ends it: its result
 * made under a name of this run's own and moved into place only while this server holds the job's
 * lease, the store told (retrying while the store is unreachable, as long as the lease lasts by
 * this server's clock), the result cache fed, the device's reservation and held session given back
 * before the final state is published, and the job's phases counted. A job stopped by a cancel, its
 * deadline or a shutdown ends as cancelled, failed or back in the queue; one whose lease was lost
 * is abandoned without a word to the store (another server runs it).
 */
final class JobThread {
    /** What a job's end needs from the workers around it. */
    interface Host {
        /** The store failed a call: note it (claiming pauses while the store is away). */
        void storeUnreachable(RuntimeException e);

        /** A job ended: schedulers look again. */
        void poke();

        boolean draining();

        boolean stopped();
    }

    private final ServeConfig cfg;
    private final DataDir dir;
    private final JobStore store;
    private final ModelCatalog models;
    private final JobRunner runner;
    private final JobEvents events;
    private final Metrics metrics;
    private final LongSupplier clock;
    private final JobStore.Owner owner;
    private final Map<String, RunningJob> running;
    private final long leaseMillis;
    private final Host host;

    JobThread(ServeConfig cfg, DataDir dir, JobStore store, ModelCatalog models, JobRunner runner, JobEvents events, Metrics metrics,
              LongSupplier clock, JobStore.Owner owner, Map<String, RunningJob> running, long leaseMillis, Host host) {
        this.cfg = cfg;
        this.dir = dir;
        this.store = store;
        this.models = models;
        this.runner = runner;
        this.events = events;
        this.metrics = metrics;
        this.clock = clock;
        this.owner = owner;
        this.running = running;
        this.leaseMillis = leaseMillis;
        this.host = host;
    }

    /** Runs an admitted job on the calling thread (its own) and ends it in the store, whatever happens. */
    void run(RunningJob r) {
        Job job = r.job;
        long t0 = System.nanoTime();
        String outcome = "failed";
        // the result is made under a name of this run's own and moved into place only while this server holds the lease
        Path staged = dir.staging(job.id(), owner.id());
        r.phase("start", t0 - r.claimedNanos);
        try {
            ModelCatalog.Loaded m = models.get(job.model(), clock.getAsLong());
            r.phase("model", System.nanoTime() - t0);
            JobRunner.Outcome o = runner.run(new JobRunner.Request(job, m, dir.upload(job.id()), staged, Submissions.encoding(Workers.format(job)),
                    r.device.reservation(job.peakBytes(), job.weightBytes()), cfg.maxPixels(), Workers.OVERLAP), r.device, new JobRunner.Control() {
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

                public void ran(String key, Object value) {
                    r.ran.put(key, value);
                }

                public void leftDevice() {
                    r.device.leave(job.id());
                    host.poke();   // the device's scheduler may admit the next job while this one finishes its file
                }
            });
            // the job's memory is free and its file written: no terminal state is published with a reservation left,
            // and the device may take the next job while this one is hashed and stored
            r.device.ended(job.id());
            host.poke();
            long h0 = System.nanoTime();
            String hash = DataDir.sha256(staged);
            long bytes = Files.size(staged);
            Path out = dir.result(job.id());
            long s0 = System.nanoTime();
            r.phase("hash", s0 - h0);
            try {
                flushProgress(r);
            } catch (RuntimeException e) {
                host.storeUnreachable(e);   // progress is for show; the result is what must reach the store
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
                Map<String, Object> end = new java.util.LinkedHashMap<>(Map.of("result_bytes", bytes, "etag", hash, "phases_ms", r.phasesMillis()));
                synchronized (r.ran) {
                    end.putAll(r.ran);
                }
                events.emit(job.id(), "succeeded", end);
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
            if (!r.lost && (r.shuttingDown || host.draining() || TempFiles.closing())) {
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
            r.device.ended(job.id());
            r.device.unhold(job.id());
            running.remove(job.id());
            metrics.jobSeconds.labelValues(outcome).observe((System.nanoTime() - t0) / 1e9);
            synchronized (r.phases) {
                r.phases.forEach((phase, nanos) -> metrics.jobPhaseSeconds.labelValues(phase).inc(nanos / 1e9));
            }
            host.poke();
        }
    }

    /** Writes a running job's latest progress to the store if it has not been written yet. */
    void flushProgress(RunningJob r) {
        r.progress.flush((done, total) -> store.progress(r.job.id(), done, total));
    }

    /** Shutdown: the job goes back to the queue, not counted as an attempt. */
    private String requeueForShutdown(Job job, RunningJob r) {
        r.device.release(job.id());
        durably(r, () -> {
            store.requeue(job.id(), owner);
            return true;
        });
        events.emit(job.id(), "requeued", Map.of("reason", "server shutting down"));
        return "requeued";
    }

    private static String firstLine(String s) {
        return s.lines().findFirst().orElse(s);
    }

    private void finish(Job job, JobState to, String error) {
        RunningJob r = running.get(job.id());
        if (r != null && r.lost) {
            abandon(job);
            return;
        }
        if (r != null) {
            r.device.release(job.id());   // before the state changes: a client that sees "failed" sees the memory free
            try {
                flushProgress(r);   // where it stopped
            } catch (RuntimeException e) {
                host.storeUnreachable(e);
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
    private boolean durably(RunningJob r, java.util.function.BooleanSupplier call) {
        while (true) {
            try {
                return call.getAsBoolean();
            } catch (RuntimeException e) {
                host.storeUnreachable(e);
                if (r.leaseRanOut() || host.stopped()) return false;
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

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
