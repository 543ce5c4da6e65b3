package dev.headroom.server;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A job running on a device, with what may stop it: a cancel, its deadline (the per-job timeout),
 * a shutdown that ran out of grace, or the loss of its lease. The job's thread looks at these after
 * every tile ({@link JobRunner.Control#stop}); the heartbeat ({@link Leases}) and cancels set them.
 */
final class RunningJob {
    final Job job;
    final DeviceSlot device;
    /** Clock time (ms) past which the job has run too long; Long.MAX_VALUE without a timeout. */
    final long deadline;
    /** System.nanoTime() by which the lease must be renewed again, or this server abandons the job. */
    volatile long leaseDeadline;
    /** System.nanoTime() of the claim (the job's phases count from it). */
    final long claimedNanos;
    volatile boolean cancelled, timedOut, shuttingDown, lost;
    volatile Thread thread;
    /** Nanoseconds by phase (queue, admit, read, upscale, store, ...), in the order first reported. */
    final Map<String, Long> phases = Collections.synchronizedMap(new LinkedHashMap<>());
    /** How the job ran ({@link JobRunner.Control#ran}), for its end event. */
    final Map<String, Object> ran = Collections.synchronizedMap(new LinkedHashMap<>());
    /** The last progress reported, written to the store off the job's thread. */
    final LatestProgress progress = new LatestProgress();

    RunningJob(Job job, DeviceSlot device, long deadline, long claimedNanos, long leaseNanos) {
        this.job = job;
        this.device = device;
        this.deadline = deadline;
        this.claimedNanos = claimedNanos;
        this.leaseDeadline = claimedNanos + leaseNanos;
    }

    void phase(String name, long nanos) {
        phases.merge(name, nanos, Long::sum);
    }

    /** Whether this server lost the job's lease: taken from it, or not renewed in time by its own clock. */
    boolean leaseRanOut() {
        if (System.nanoTime() > leaseDeadline) lost = true;
        return lost;
    }

    /** The phases in milliseconds (0.1 ms), for the job's end event. */
    Map<String, Double> phasesMillis() {
        Map<String, Double> out = new LinkedHashMap<>();
        synchronized (phases) {
            phases.forEach((k, v) -> out.put(k, Math.round(v / 1e5) / 10.0));
        }
        return out;
    }
}
