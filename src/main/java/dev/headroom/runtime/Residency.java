package dev.headroom.runtime;

import dev.headroom.core.Precision;
import dev.headroom.core.Weights;
import dev.headroom.core.graph.Graph;
import dev.headroom.core.residency.ResidencyPolicy;
import dev.headroom.core.residency.ResidencyPolicy.Priority;
import dev.headroom.runtime.memory.Budget;
import dev.headroom.runtime.memory.DeviceMemory;
import dev.headroom.runtime.memory.MemoryListener;
import dev.headroom.runtime.memory.MemoryTrace;
import dev.headroom.runtime.memory.Pressure;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The residency manager of one {@link Device}: models' weights as components loaded once per
 * device and precision and shared by every session that runs them, reference counted
 * ({@link Lease}), each charged to its own ledger node {@code weights/<model> <precision>}.
 * {@link ResidencyPolicy} decides (priority classes, LRU within a class, never a model in use);
 * this class carries the decisions out:
 * <ul>
 * <li>on a failed allocation, the ladder's "evict" rung asks {@link #evict} to free idle weights;
 * <li>at critical pressure, idle weights are evicted until use is back under the warning level;
 * <li>{@link #makeRoom} frees headroom for a job the scheduler is about to admit;
 * <li>an evicted model keeps a host copy of its prepared weights in the device's own layout
 *     ({@link PreparedWeights.Host}: pinned memory on a GPU) within the host cache budget
 *     ({@code --host-cache}, LRU), so reloading it is one copy at the bus's rate, not a file read
 *     and a preparation; beyond the budget it goes back to disk. The copy is taken when the model
 *     is loaded from its file (so an eviction, which may happen inside a failed allocation, only
 *     frees) and is counted against the budget while the model is on the device too.
 * </ul>
 * Loads, reloads and evictions are traced (LOAD, RELOAD, EVICT; memory-report draws them).
 *
 * <p>A model whose kernels do not fit the weight budget it is acquired with is a component like
 * any other, streamed ({@link WeightStream}): its resident layers, its prefetch slots and its
 * streamed layers' biases are charged to its node, every session of its precision shares the one
 * copy (passes take turns on the slots), and it is evicted when idle. Its host copy is its resident
 * layers' copy plus the staged layers it streams from (already pinned: kept, not copied), counted
 * against the host cache as a whole; a reload then copies the resident layers back and makes new
 * slots. The first acquire decides how a model is held: a later one with another budget shares it.
 *
 * <p>Locking: this object's lock is never held while calling into the device's memory (which may
 * call back into {@link #evict} under its own lock), so the two cannot deadlock. See {@link Device}
 * for a usage example.
 */
public final class Residency implements MemoryListener, AutoCloseable {

    /** What a model's weights are loaded from: its graph, its host weights, its value range (1 or 255). */
    public record Source(Graph graph, Weights weights, float valueRange) {}

    /** Reads a model from its file (the slow path: on first use, and after its host copy was dropped). */
    @FunctionalInterface
    public interface Loader {
        Source load() throws java.io.IOException;
    }

    private static final class Slot {
        PreparedWeights.Host host; // the host copy, or null
        long hostBytes;
        PreparedWeights device;    // on the device, or null
        long deviceBytes;
        boolean loading;
        Graph graph;
        float valueRange;
    }

    private final Device device;
    private final DeviceMemory memory;
    private final ResidencyPolicy policy;
    private final Map<String, Slot> slots = new HashMap<>();
    private long loads, reloads, evictions;
    private boolean closed;

    /** @param hostCacheBytes bytes of host copies kept for evicted models (0: none; reloads then read the file again) */
    public Residency(Device device, long hostCacheBytes) {
        this.device = device;
        this.memory = device.memory();
        this.policy = new ResidencyPolicy(hostCacheBytes);
        memory.addListener(this);
    }

    /** The ledger name of a model in a precision. */
    static String key(String model, Precision precision) {
        return model + " " + precision;
    }

    /** As {@link #acquire(String, Priority, Loader, Precision, Session)} in {@code session}'s precision; the lease waits for the session's work when closed. */
    public Lease acquire(String model, Priority priority, Loader loader, Session session) throws java.io.IOException {
        return acquire(model, priority, loader, session.precision(), session, ALL_RESIDENT);
    }

    /** As {@link #acquire(String, Priority, Loader, Precision, Session, long)} in {@code session}'s precision. */
    public Lease acquire(String model, Priority priority, Loader loader, Session session, long weightBudget) throws java.io.IOException {
        return acquire(model, priority, loader, session.precision(), session, weightBudget);
    }

    /** A weight budget that holds every kernel resident. */
    public static final long ALL_RESIDENT = Long.MAX_VALUE;

    /** As {@link #acquire(String, Priority, Loader, Precision, Session, long)} with every kernel resident. */
    public Lease acquire(String model, Priority priority, Loader loader, Precision precision, Session session) throws java.io.IOException {
        return acquire(model, priority, loader, precision, session, ALL_RESIDENT);
    }

    /**
     * A reference to {@code model}'s weights prepared in {@code precision}, loading them (from the
     * host copy, else with {@code loader}) if they are not on the device; while any lease is open
     * they are not evicted. Threads asking for a model another thread is loading wait for that load.
     *
     * @param session      whose work is waited for when the lease closes (null: none)
     * @param weightBudget device bytes its convolution kernels may take when they are loaded from
     *                     the file: what does not fit is streamed, the planner choosing the split
     *                     and the slots ({@link PreparedWeights#streamed(Graph, Weights, Device, Precision, long, int)});
     *                     {@link #ALL_RESIDENT} for none. A budget too small for even the slots is
     *                     refused (IllegalArgumentException, with the bytes needed) and nothing stays charged.
     */
    public Lease acquire(String model, Priority priority, Loader loader, Precision precision, Session session, long weightBudget) throws java.io.IOException {
        if (model.contains("/")) throw new IllegalArgumentException("model name '" + model + "' may not contain '/' (it names a ledger node)");
        String key = key(model, precision);
        Slot slot;
        PreparedWeights.Host from;
        Graph graph;
        float valueRange;
        synchronized (this) {
            if (closed) throw new IllegalStateException("residency manager of " + device.name() + " is closed");
            slot = slots.computeIfAbsent(key, k -> new Slot());
            policy.acquire(key, priority);
            while (slot.loading) {
                try {
                    wait();
                } catch (InterruptedException e) {
                    policy.release(key);
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("interrupted while waiting for '" + key + "' to load", e);
                }
            }
            if (slot.device != null) return new Lease(key, slot.graph, slot.device, slot.valueRange, session);
            slot.loading = true;
            from = slot.host;
            graph = slot.graph;
            valueRange = slot.valueRange;
        }
        PreparedWeights prepared = null;
        PreparedWeights.Host kept = from;
        boolean fromDisk = from == null;
        long t0 = System.nanoTime();
        try {
            Budget node = memory.weights(key);
            if (fromDisk) {
                Source src = loader.load();
                graph = src.graph();
                valueRange = src.valueRange();
                try (var scope = memory.chargeTo(node, "load " + key)) {
                    prepared = weightBudget == ALL_RESIDENT
                            ? PreparedWeights.prepare(graph, src.weights(), (op, k, b, s) -> device.prepareConv(op, k, b, s, precision))
                            : PreparedWeights.streamed(graph, src.weights(), device, precision, weightBudget, WeightStream.AUTO_SLOTS);
                }
            } else {
                try (var scope = memory.chargeTo(node, "reload " + key)) {
                    prepared = from.restore();
                }
            }
            long nanos = System.nanoTime() - t0, bytes = node.used();
            String detail = fromDisk ? "from disk in " + millis(nanos) : "from host copy in " + millis(nanos) + " (" + rate(bytes, nanos) + ")";
            if (prepared.stream() != null) detail += "; " + prepared.stream().describe();
            if (fromDisk && policy.fitsHostCache(bytes)) {
                long c0 = System.nanoTime();
                kept = prepared.toHost(device);
                if (kept != null && !policy.fitsHostCache(kept.bytes())) {
                    kept.close();
                    kept = null;
                }
                detail += kept == null ? "; no host copy (pinned memory refused)" : "; host copy made in " + millis(System.nanoTime() - c0);
            }
            memory.traceResidency(fromDisk ? MemoryTrace.Kind.LOAD : MemoryTrace.Kind.RELOAD, key, bytes, detail);
            List<PreparedWeights.Host> dropped = new ArrayList<>();
            Lease lease;
            synchronized (this) {
                slot.device = prepared;
                slot.deviceBytes = bytes;
                slot.graph = graph;
                slot.valueRange = valueRange;
                slot.host = kept;
                slot.hostBytes = kept == null ? 0 : kept.bytes();
                policy.onDevice(key, bytes, slot.hostBytes);
                if (fromDisk) loads++;
                else reloads++;
                dropHostOverflow(dropped);
                slot.loading = false;
                notifyAll();
                lease = new Lease(key, graph, prepared, valueRange, session);
            }
            closeAll(dropped);
            return lease;
        } catch (java.io.IOException | RuntimeException | Error e) {
            if (prepared != null) prepared.close();
            if (kept != null && kept != from) kept.close();
            synchronized (this) {
                slot.loading = false;
                policy.release(key);
                notifyAll();
            }
            throw e;
        }
    }

    /** Drops host copies beyond the budget (policy's order) into {@code dropped}, to be closed outside the lock; call holding the lock. */
    private void dropHostOverflow(List<PreparedWeights.Host> dropped) {
        for (String k : policy.hostOverflow()) {
            Slot s = slots.get(k);
            dropped.add(s.host);
            s.host = null;
            s.hostBytes = 0;
            policy.hostDropped(k);
        }
    }

    private static void closeAll(List<PreparedWeights.Host> copies) {
        for (PreparedWeights.Host h : copies) h.close();
    }

    private static String millis(long nanos) {
        return String.format(java.util.Locale.ROOT, "%.1f ms", nanos / 1e6);
    }

    private static String rate(long bytes, long nanos) {
        return String.format(java.util.Locale.ROOT, "%.2f GB/s", bytes / (double) Math.max(1, nanos));
    }

    /**
     * The ladder's evict rung: frees idle weights towards {@code bytes} (policy's order). Called by
     * the device's memory under its own lock; returns the bytes freed.
     */
    @Override
    public long evict(long bytes) {
        return evict(bytes, "to allocate");
    }

    /** At critical pressure, evicts idle weights until use is back under the warning level. */
    @Override
    public void pressureChanged(Pressure from, Pressure to, long used, long budget) {
        if (to != Pressure.CRITICAL) return;
        long target = (long) (memory.thresholds().warning() * budget);
        if (used > target) evict(used - target, "at critical pressure");
    }

    /**
     * Makes room for a job of {@code bytes}: evicts idle weights (policy's order) until the
     * device's headroom is at least {@code bytes}, if the idle weights can make it so. Returns the
     * bytes freed (0 when nothing needed to go, or nothing could make enough room).
     */
    public long makeRoom(long bytes) {
        long need = bytes - memory.headroom();
        if (need <= 0) return 0;
        return evict(need, "to make room for " + dev.headroom.core.Sizes.format(bytes));
    }

    /** A model asked to leave the device by name while jobs hold it. */
    public static final class InUse extends IllegalStateException {
        public final int jobs;

        InUse(String key, int jobs, String device) {
            super("model '" + key + "' is in use by " + jobs + (jobs == 1 ? " job" : " jobs") + " on " + device
                    + "; unload it once they have finished, or cancel them first");
            this.jobs = jobs;
        }
    }

    /**
     * Evicts {@code model}'s weights in {@code precision} from the device now and drops its host
     * copy (an operator's unload: the next job loads it from its file again); returns the device
     * bytes freed, 0 when it was not there. Refused with {@link InUse} while a lease holds it.
     */
    public long evict(String model, Precision precision) {
        String key = key(model, precision);
        PreparedWeights victim = null;
        PreparedWeights.Host copy = null;
        long bytes = 0;
        synchronized (this) {
            Slot s = slots.get(key);
            ResidencyPolicy.ByName verdict = policy.evictByName(key);
            if (verdict == ResidencyPolicy.ByName.IN_USE) throw new InUse(key, policy.status(key).refs(), device.name());
            if (s != null && s.host != null) {
                copy = s.host;   // freed below, outside the lock
                s.host = null;
                s.hostBytes = 0;
                policy.hostDropped(key);
            }
            if (verdict != ResidencyPolicy.ByName.NOT_ON_DEVICE) {
                victim = s.device;
                bytes = s.deviceBytes;
                s.device = null;
                s.deviceBytes = 0;
                policy.offDevice(key);
                evictions++;
            }
        }
        if (copy != null) copy.close();
        if (victim == null) return 0;
        victim.close();
        memory.traceResidency(MemoryTrace.Kind.EVICT, key, bytes, "unloaded by name");
        return bytes;
    }

    private long evict(long bytes, String why) {
        List<String> keys;
        List<PreparedWeights> victims = new ArrayList<>();
        List<Long> sizes = new ArrayList<>();
        List<Boolean> hostCopy = new ArrayList<>();
        List<PreparedWeights.Host> dropped = new ArrayList<>();
        synchronized (this) {
            if (closed) return 0;
            keys = policy.victims(bytes);
            for (String k : keys) {
                Slot s = slots.get(k);
                victims.add(s.device);
                sizes.add(s.deviceBytes);
                s.device = null;
                s.deviceBytes = 0;
                policy.offDevice(k);
                evictions++;
            }
            dropHostOverflow(dropped);
            for (String k : keys) hostCopy.add(slots.get(k).host != null);
        }
        long freed = 0;
        for (int i = 0; i < keys.size(); i++) {
            victims.get(i).close();
            freed += sizes.get(i);
            memory.traceResidency(MemoryTrace.Kind.EVICT, keys.get(i), sizes.get(i), why + (hostCopy.get(i) ? "; host copy kept" : "; back to disk"));
        }
        closeAll(dropped);
        return freed;
    }

    /** Every model known, most recently used first. */
    public synchronized List<ResidencyPolicy.Status> status() {
        return policy.statuses();
    }

    /** Loads from disk, reloads from a host copy, and evictions so far. */
    public synchronized long[] counts() {
        return new long[] {loads, reloads, evictions};
    }

    /** Frees every model's weights and host copy; every lease must have been closed. */
    @Override
    public void close() {
        List<PreparedWeights> all = new ArrayList<>();
        List<PreparedWeights.Host> copies = new ArrayList<>();
        List<String> keys = new ArrayList<>();
        synchronized (this) {
            if (closed) return;
            for (ResidencyPolicy.Status s : policy.statuses()) {
                if (s.refs() > 0) throw new IllegalStateException("residency manager closed while '" + s.key() + "' has " + s.refs() + " open leases");
            }
            closed = true;
            for (Map.Entry<String, Slot> e : slots.entrySet()) {
                if (e.getValue().device != null) all.add(e.getValue().device);
                if (e.getValue().host != null) copies.add(e.getValue().host);
                keys.add(e.getKey());
            }
            slots.clear();
        }
        memory.removeListener(this);
        for (PreparedWeights p : all) p.close();
        closeAll(copies);
        for (String k : keys) memory.dropWeights(k);
    }

    /** One reference to a model's prepared weights; closing it (after the session's work is done) lets them be evicted again. */
    public final class Lease implements AutoCloseable {
        private final String key;
        private final Graph graph;
        private final PreparedWeights weights;
        private final float valueRange;
        private final Session session;
        private boolean closed;

        private Lease(String key, Graph graph, PreparedWeights weights, float valueRange, Session session) {
            this.key = key;
            this.graph = graph;
            this.weights = weights;
            this.valueRange = valueRange;
            this.session = session;
        }

        public String key() {
            return key;
        }

        public Graph graph() {
            return graph;
        }

        public PreparedWeights weights() {
            return weights;
        }

        public float valueRange() {
            return valueRange;
        }

        @Override
        public void close() {
            if (closed) return;
            closed = true;
            if (session != null) session.synchronize();   // the device may still be reading these weights
            List<PreparedWeights.Host> dropped = new ArrayList<>();
            synchronized (Residency.this) {
                policy.release(key);
                dropHostOverflow(dropped);
            }
            closeAll(dropped);
        }
    }
}
