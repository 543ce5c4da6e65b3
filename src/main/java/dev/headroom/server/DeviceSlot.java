package dev.headroom.server;

import dev.headroom.core.Precision;
import dev.headroom.core.plan.DeviceModel;
import dev.headroom.runtime.Ops;
import dev.headroom.runtime.memory.Budget;
import dev.headroom.runtime.memory.DeviceMemory;
import dev.headroom.runtime.memory.Pressure;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One device as the server schedules it: its budget as a ledger whose children are the running
 * jobs' reservations (each job's planned peak, taken at admission and given back when it ends),
 * and the jobs running on it.
 *
 * <p>Until devices and sessions share one allocator across jobs, each job runs on a backend of its
 * own whose budget is its reservation ({@link Backend#open}): the reservations never add up past
 * the device budget, so neither can the jobs' memory, and a job that strays past its plan meets
 * its own degrade ladder instead of another job's memory.
 */
public final class DeviceSlot {

    /** Opens a backend on this device whose memory budget is {@code budgetBytes}; closing it frees everything. */
    public interface Backend {
        Ops open(long budgetBytes);
    }

    /**
     * @param usable      the share of a budget plans may fill (the ledger's critical pressure threshold)
     * @param memoryModel what the backend allocates, for the planner
     * @param maxRunning  jobs it runs at once
     */
    public record Spec(String name, boolean gpu, Precision precision, long budget, double usable, DeviceModel memoryModel,
                       Backend backend, int maxRunning) {}

    /** A job on this device: its reservation and, once it runs, its backend's memory. */
    private static final class Running {
        final Budget reservation;
        volatile DeviceMemory memory;

        Running(Budget reservation) {
            this.reservation = reservation;
        }
    }

    private final Spec spec;
    private final Budget ledger;
    private final Map<String, Running> running = new LinkedHashMap<>();
    private final Pressure.Thresholds thresholds = Pressure.Thresholds.DEFAULT;

    public DeviceSlot(Spec spec) {
        this.spec = spec;
        this.ledger = Budget.root(spec.name(), spec.budget());
    }

    public Spec spec() {
        return spec;
    }

    /**
     * Bytes the caching allocator may hold beyond a plan's peak: the plan counts bytes in blocks,
     * the allocator grows in segments (one large segment of 20 MiB and one small of 2 MiB at worst
     * beyond what the blocks need).
     */
    static final long ALLOCATOR_SLACK = dev.headroom.runtime.memory.CachingAllocator.LARGE_SEGMENT
            + dev.headroom.runtime.memory.CachingAllocator.SMALL_SEGMENT;

    /**
     * Bytes a job planned for this device reserves: its plan's peak over the usable share, plus the
     * allocator's slack, at most the whole budget (what the fitter accepted alone always fits alone).
     */
    public long reservation(long plannedPeak) {
        return Math.min(spec.budget(), (long) Math.ceil(plannedPeak / spec.usable()) + ALLOCATOR_SLACK);
    }

    public synchronized long headroom() {
        return ledger.available();
    }

    public synchronized int runningCount() {
        return running.size();
    }

    public synchronized void reserve(String jobId, long bytes) {
        Budget b = ledger.child(jobId, bytes);
        b.charge(bytes);
        running.put(jobId, new Running(b));
    }

    /** Notes the backend a running job opened, so its live memory shows in {@link #snapshot}. */
    public synchronized void attach(String jobId, DeviceMemory memory) {
        Running r = running.get(jobId);
        if (r != null) r.memory = memory;
    }

    public synchronized void release(String jobId) {
        Running r = running.remove(jobId);
        if (r == null) return;
        r.reservation.credit(r.reservation.used());
        r.reservation.close();
    }

    /** Bytes reserved now; 0 once every job has ended (the baseline). */
    public synchronized long reserved() {
        return ledger.used();
    }

    /** The most ever reserved at once. */
    public synchronized long peakReserved() {
        return ledger.peak();
    }

    public synchronized Pressure pressure() {
        return thresholds.of(ledger.used(), ledger.limit());
    }

    /** Live bytes of the running jobs' backends by category (weights, activations, workspace, cache). */
    public synchronized Map<String, Long> usedByCategory() {
        Map<String, Long> m = new LinkedHashMap<>();
        for (String c : List.of("weights", "activations", "workspace", "cache")) m.put(c, 0L);
        for (Running r : running.values()) {
            if (r.memory != null) r.memory.usedByCategory().forEach((k, v) -> m.merge(k, v, Long::sum));
        }
        return m;
    }

    public synchronized Map<String, Object> snapshot() {
        Map<String, Object> d = new LinkedHashMap<>();
        d.put("name", spec.name());
        d.put("kind", spec.gpu() ? "cuda" : "cpu");
        d.put("precision", spec.precision().name().toLowerCase());
        d.put("budget_bytes", spec.budget());
        d.put("reserved_bytes", ledger.used());
        d.put("reserved_peak_bytes", ledger.peak());
        d.put("headroom_bytes", ledger.available());
        d.put("bytes_by_category", usedByCategory());
        d.put("pressure", pressure().name().toLowerCase());
        d.put("max_running", spec.maxRunning());
        Map<String, Long> jobs = new LinkedHashMap<>();
        running.forEach((id, r) -> jobs.put(id, r.reservation.used()));
        d.put("running_jobs", jobs);
        return d;
    }
}
