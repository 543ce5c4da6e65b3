package dev.headroom.server;

import dev.headroom.core.Precision;
import dev.headroom.core.plan.DeviceModel;
import dev.headroom.core.residency.ResidencyPolicy;
import dev.headroom.runtime.Device;
import dev.headroom.runtime.Residency;
import dev.headroom.runtime.WeightStream;
import dev.headroom.runtime.memory.Budget;
import dev.headroom.runtime.memory.CachingAllocator;
import dev.headroom.runtime.memory.DeviceMemory;
import dev.headroom.runtime.memory.Pressure;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * One device as the server schedules it: the runtime's {@link Device} (one ledger and allocator
 * that every job's session shares), its {@link Residency} manager (models' weights loaded once
 * and shared, evicted idle-first by priority and age), and the running jobs' activation
 * reservations: each admitted job reserves its plan's activation peak here until it ends, so jobs
 * that are admitted together never need more than the device has, even before they have
 * allocated it; and the sessions of finished jobs, kept for the next ones ({@link SessionPool}).
 *
 * <p>Admission asks: reserved activations + weights on the device + what the job needs (its
 * activations, and its weights when its model is not resident) within the budget. Idle weights
 * count as room, since {@link #makeRoom} can evict them.
 */
public final class DeviceSlot implements AutoCloseable {

    /**
     * Bytes the caching allocator may hold beyond a plan's blocks: the plan counts bytes in blocks,
     * the allocator grows in segments (one large segment of 20 MiB and one small of 2 MiB at worst
     * beyond what the blocks need).
     */
    static final long ALLOCATOR_SLACK = CachingAllocator.LARGE_SEGMENT + CachingAllocator.SMALL_SEGMENT;

    private final Device device;
    private final Residency residency;
    private final int maxRunning;
    private final Budget reservations;
    private final Map<String, Budget> running = new LinkedHashMap<>();
    /**
     * Jobs that left the device (their last tile done, device memory and session given back) and
     * are finishing their files on the host: the host's encoders catch up on one job's last rows
     * while the device runs the next. Jobs on the device and jobs finishing are at most
     * {@link #finishingFactor} times {@link #maxRunning}, so no more pile up on the host than the device runs.
     */
    private final java.util.Set<String> finishing = new java.util.LinkedHashSet<>();
    /**
     * Jobs on the device and finishing, in multiples of maxRunning: 1 holds a slot until the file is
     * written (as before jobs left the device), 2 the default. -Dheadroom.finishing-factor=N (1 to 16)
     * sets it, for measuring (scripts/serve/gpu-throughput --java-opts).
     */
    private final int finishingFactor = finishingFactor(System.getProperty("headroom.finishing-factor"));

    static int finishingFactor(String v) {
        if (v == null || v.isBlank()) return 2;
        int f;
        try {
            f = Integer.parseInt(v.strip());
        } catch (NumberFormatException e) {
            f = 0;
        }
        if (f < 1 || f > 16) throw new IllegalArgumentException("-Dheadroom.finishing-factor=" + v + ": use a whole number from 1 to 16");
        return f;
    }
    /** Sessions of finished jobs kept for the next jobs, by the shapes they ran. */
    private final SessionPool sessions;

    /** @param maxRunning jobs it runs at once */
    public DeviceSlot(Device device, Residency residency, int maxRunning) {
        this.device = device;
        this.residency = residency;
        this.maxRunning = maxRunning;
        this.reservations = Budget.root(device.name() + " reservations", budget());
        this.sessions = new SessionPool(() -> device.openSession(precision()), maxRunning);
    }

    public String name() {
        return device.name();
    }

    public Device device() {
        return device;
    }

    public Residency residency() {
        return residency;
    }

    public int maxRunning() {
        return maxRunning;
    }

    public boolean gpu() {
        return device.accelerator();
    }

    public Precision precision() {
        return device.defaultPrecision();
    }

    public DeviceModel memoryModel() {
        return device.memoryModel(precision());
    }

    /**
     * The device bytes {@code m}'s kernels get when the residency manager loads it here: all of
     * them ({@link Residency#ALL_RESIDENT}) when they fit beside one planning tile's activations
     * within the usable share of the budget; else what is left beside that tile, and the rest is
     * streamed, the model still shared by every job that runs it ({@link WeightStream#autoBudget}).
     */
    public long weightBudget(dev.headroom.models.Model m) {
        long b = WeightStream.autoBudget(m.graph(), m.weights(), device, precision());
        return b == Long.MAX_VALUE ? Residency.ALL_RESIDENT : b;
    }

    /** What a job of {@code m} allocates, with its weights as this device would hold them (streamed ones as their resident part and slots): for the fitter. */
    public DeviceModel memoryModel(dev.headroom.models.Model m) {
        return WeightStream.plannedModel(memoryModel(), m.graph(), m.weights(), device, precision(), weightBudget(m));
    }

    public long budget() {
        return device.memory().ledger().limit();
    }

    /** The share of the budget a plan may fill (the ledger's critical pressure threshold). */
    public double usable() {
        return device.memory().thresholds().critical();
    }

    /**
     * Bytes a job reserves for its activations: its plan's peak without the weights, over the
     * usable share, plus the allocator's slack; at most the whole budget.
     */
    public long reservation(long plannedPeak, long plannedWeights) {
        return Math.min(budget(), (long) Math.ceil(Math.max(0, plannedPeak - plannedWeights) / usable()) + ALLOCATOR_SLACK);
    }

    /** What admitting a job takes now: its reservation, and its weights unless its model is on the device. */
    public long need(Job j, Set<String> resident) {
        return reservation(j.peakBytes(), j.weightBytes()) + (resident.contains(j.model()) ? 0 : j.weightBytes());
    }

    /** Models whose weights are on this device now, by name. */
    public Set<String> residentModels() {
        Set<String> out = new HashSet<>();
        String suffix = " " + precision();
        for (ResidencyPolicy.Status s : residency.status()) {
            if (s.where() == ResidencyPolicy.Where.DEVICE && s.key().endsWith(suffix)) out.add(s.key().substring(0, s.key().length() - suffix.length()));
        }
        return out;
    }

    /** Weights on the device that running jobs hold (the rest may be evicted). */
    private long pinnedWeights() {
        long b = 0;
        for (ResidencyPolicy.Status s : residency.status()) if (s.where() == ResidencyPolicy.Where.DEVICE && s.refs() > 0) b += s.deviceBytes();
        return b;
    }

    private long weightsOnDevice() {
        return device.memory().usedByCategory().getOrDefault("weights", 0L);
    }

    /** Room for the scheduling policy: the budget less reserved activations and weights in use (idle weights can be evicted). */
    public synchronized long headroom() {
        return budget() - reservations.used() - pinnedWeights();
    }

    /** Bytes free beside the reservations and every model's weights on the device, idle ones too: what a job can take without evicting. */
    public synchronized long roomWithoutEviction() {
        return budget() - reservations.used() - weightsOnDevice();
    }

    /**
     * Makes sure {@code need} bytes are free beside the reservations and the weights on the device,
     * asking the residency manager to evict idle models (lowest priority, least recently used
     * first) when they are not; false when even that cannot make the room.
     */
    public synchronized boolean makeRoom(long need) {
        long free = budget() - reservations.used() - weightsOnDevice();
        if (need <= free) return true;
        // what the device must have free now: this job, and what running jobs reserved but have not allocated yet
        long live = device.memory().usedByCategory().getOrDefault("activations", 0L);
        residency.makeRoom(need + Math.max(0, reservations.used() - live));
        return need <= budget() - reservations.used() - weightsOnDevice();
    }

    public synchronized int runningCount() {
        return running.size();
    }

    public synchronized void reserve(String jobId, long bytes) {
        Budget b = reservations.child(jobId, bytes);
        b.charge(bytes);
        running.put(jobId, b);
    }

    public synchronized void release(String jobId) {
        Budget b = running.remove(jobId);
        if (b == null) return;
        b.credit(b.used());
        b.close();
    }

    /** A running job is done with the device ({@link JobRunner.Control#leftDevice}): its reservation is released and it counts as finishing. */
    public synchronized void leave(String jobId) {
        if (running.containsKey(jobId)) finishing.add(jobId);
        release(jobId);
    }

    /** A job ended, wherever it was: nothing of it is left on the device or in the finishing count. */
    public synchronized void ended(String jobId) {
        release(jobId);
        finishing.remove(jobId);
    }

    /** Jobs finishing their files on the host after leaving the device. */
    public synchronized int finishingCount() {
        return finishing.size();
    }

    /** Their ids. */
    public synchronized java.util.List<String> finishing() {
        return java.util.List.copyOf(finishing);
    }

    /** Jobs the device may admit now: free slots on it, as long as jobs on it and finishing stay within {@link #finishingFactor} times its slots. */
    public synchronized int freeSlots() {
        return Math.max(0, Math.min(maxRunning - running.size(), finishingFactor * maxRunning - running.size() - finishing.size()));
    }

    /** Whether the device may admit another job ({@link #freeSlots}). */
    public boolean hasSlot() {
        return freeSlots() > 0;
    }

    /** Each running job's reservation, by job id. */
    public synchronized Map<String, Long> reservations() {
        Map<String, Long> out = new LinkedHashMap<>();
        running.forEach((id, b) -> out.put(id, b.used()));
        return out;
    }

    /** Bytes reserved for running jobs' activations; 0 once every job has ended (the baseline). */
    public synchronized long reserved() {
        return reservations.used();
    }

    public synchronized Pressure pressure() {
        return device.memory().pressure();
    }

    /** Live bytes by category (weights, activations, workspace, cache) from the device's ledger. */
    public Map<String, Long> usedByCategory() {
        return device.memory().usedByCategory();
    }

    public synchronized Map<String, Object> snapshot() {
        DeviceMemory m = device.memory();
        Map<String, Object> d = new LinkedHashMap<>();
        d.put("name", name());
        d.put("kind", gpu() ? "cuda" : "cpu");
        d.put("precision", precision().name().toLowerCase());
        d.put("budget_bytes", budget());
        d.put("reserved_bytes", reservations.used());
        d.put("reserved_peak_bytes", reservations.peak());
        d.put("headroom_bytes", headroom());
        d.put("ledger_used_bytes", m.ledger().used());
        d.put("ledger_peak_bytes", m.ledger().peak());
        d.put("bytes_by_category", m.usedByCategory());
        d.put("pressure", m.pressure().name().toLowerCase());
        d.put("rungs", m.rungs());
        d.put("max_running", maxRunning);
        d.put("idle_sessions", idleSessions());
        Map<String, Long> jobs = new LinkedHashMap<>();
        running.forEach((id, b) -> jobs.put(id, b.used()));
        d.put("running_jobs", jobs);
        d.put("finishing_jobs", finishing());
        d.put("resident_models", residentModels());
        return d;
    }

    /**
     * Runs device work (loading or freeing weights) on a platform thread and waits for it. CUDA's
     * current context belongs to the OS thread, and a virtual thread (every HTTP request is one) may
     * move to another carrier thread at any blocking point between two driver calls; so work asked
     * for by a request runs on a thread of its own. On a platform thread it runs in place.
     */
    public static <T> T onPlatformThread(java.util.concurrent.Callable<T> work) throws Exception {
        if (!Thread.currentThread().isVirtual()) return work.call();
        var task = new java.util.concurrent.FutureTask<>(work);
        Thread t = Thread.ofPlatform().daemon().name("headroom-device-work").start(task);
        try {
            return task.get();
        } catch (java.util.concurrent.ExecutionException e) {
            if (e.getCause() instanceof Exception x) throw x;
            if (e.getCause() instanceof Error x) throw x;
            throw e;
        } finally {
            t.join();
        }
    }

    /**
     * What decides which convolution plans a job's session builds: its model (a variant is a
     * model of its own), input size, tile and batch. A kept session that ran a job of the same
     * shape has every plan the next one needs; one that did not builds them (cuDNN plan
     * finalisation, which on the H200 was most of a short job's time without kept sessions).
     */
    public static String shape(Job j) {
        return j.model() + " " + j.width() + "x" + j.height() + " tile " + j.tile() + " batch " + j.batch();
    }

    /** One job's session: an idle one where there is one, else a new one; {@link SessionPool.Lease#clean} at the end of a job that went well keeps it for the next. */
    public SessionPool.Lease session() {
        return sessions.lease(null, null);
    }

    /** The session for job {@code j}: the one {@link #holdSession} set aside for it, else the idle one best for its shape ({@link SessionPool}). */
    public SessionPool.Lease session(Job j) {
        return sessions.lease(j.id(), shape(j));
    }

    /** A session for a job of {@code shape} ({@link SessionPool#lease}). */
    public SessionPool.Lease session(String shape) {
        return sessions.lease(null, shape);
    }

    /**
     * At admission: sets the idle session best for job {@code j} aside for it, so a job admitted
     * right after it (before its thread asks) does not take the session whose plans it was
     * admitted for. {@link #unhold} puts it back if the job never took it.
     */
    public void holdSession(Job j) {
        sessions.hold(j.id(), shape(j));
    }

    /** The job ended: a session held for it that it never took goes back to the pool. */
    public void unhold(String jobId) {
        sessions.unhold(jobId);
    }

    /** Idle sessions kept for the next jobs. */
    public int idleSessions() {
        return sessions.idle();
    }

    /** Shapes ({@link #shape}) that an idle session of this device has run: a job of one starts without building plans. */
    public Set<String> warmShapes() {
        return sessions.warmShapes();
    }

    /** Whether a job admitted now would get a kept session or open a new one (a new one has no plans). */
    public boolean hasIdleSession() {
        return sessions.idle() > 0;
    }

    /** Closes the idle sessions, frees every model's weights and closes the device (its audit names any leak). */
    @Override
    public void close() {
        try {
            sessions.close();
            residency.close();
        } finally {
            device.close();
        }
    }
}
