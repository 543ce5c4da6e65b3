package dev.headroom.runtime.memory;

import dev.headroom.core.Sizes;
import dev.headroom.runtime.DeviceBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * All memory of one device: the {@link CachingAllocator}, the ledger ({@link Budget} tree), the
 * pressure levels, the degrade ladder and the trace. Every buffer of every op, weight and
 * workspace of a backend comes from here, on the GPU and on the CPU alike.
 *
 * <p>Ledger: root = the device budget (the card, or a smaller --vram-budget, which the driver-side
 * allocator enforces as if the card were that small); children weights, activations (a job's
 * activations are its child), workspace, and cache = reserved bytes no block uses. So root's use
 * is what the driver backs for us, and each category's use is its live blocks.
 *
 * <p>Degrade ladder for a failed request: flush the cache (return free segments, unmap free
 * pages) and retry; ask listeners to evict and retry; then {@link DeviceOutOfMemory}. The
 * executor may catch that and shrink its step ({@link #rung} records it). Every rung is counted
 * and traced.
 *
 * <p>Shared by every session of the device, from many threads: what a thread allocates is charged
 * to that thread's category, op and job ({@link #tag}, {@link #job}), so two sessions' jobs keep
 * their own ledger nodes. A model's weights are charged to their own node, {@code weights/<model>}
 * ({@link #weights}); the CPU backend, whose weights are plain arrays, charges them without a block
 * ({@link #reserve}).
 */
public final class DeviceMemory implements AutoCloseable {

    /** Facts about the device for error messages; asked only when an allocation has failed. */
    public interface Probe {
        long free();

        long total();

        /** Other processes holding memory on the device, as a short phrase ("none", "pid 123: 4.00 GiB"). */
        String otherProcesses();

        Probe NONE = new Probe() {
            public long free() { return -1; }
            public long total() { return -1; }
            public String otherProcesses() { return "unknown"; }
        };
    }

    /** Fails requests on purpose, for tests: asked before each attempt at request number {@code request} (from 1). */
    public interface FaultInjector {
        boolean fail(long request, int attempt);

        FaultInjector NONE = (r, a) -> false;
    }

    /** A buffer handed out: the block, its size when handed out, and the ledger node and op it was charged to. */
    private record Buffer(CachingAllocator.Block block, long bytes, Budget charged, String op) implements DeviceBuffer {
        public long address() {
            return block.address();
        }
    }

    /** Restores the previous tags when closed. */
    public interface Scope extends AutoCloseable {
        @Override
        void close();
    }

    private final String device;
    private final CachingAllocator pool;
    private final Budget root, weights, activations, workspace, cache;
    private final Pressure.Thresholds thresholds;
    private final MemoryTrace trace;
    private final Probe probe;
    private final List<MemoryListener> listeners = new ArrayList<>();
    private final Map<String, Long> rungs = new LinkedHashMap<>();
    private final Map<Long, Buffer> live = new HashMap<>();
    private Pressure level = Pressure.OPTIMAL;
    private FaultInjector faults = FaultInjector.NONE;
    private long requests;

    /** What the calling thread's allocations are charged to: one per thread, as sessions run on threads of their own. */
    private static final class Tags {
        Budget current;
        Budget job;        // the thread's open job's node under activations, or null
        String op;
    }

    private final ThreadLocal<Tags> tags;

    /**
     * @param budget bytes this device may back in all (the card's memory, or --vram-budget)
     * @param vm     the driver's virtual memory for expandable segments, or null for plain ones
     * @param trace  where events go, or null
     */
    public DeviceMemory(String device, long budget, RawAllocator raw, VirtualMemory vm, StreamEvents events,
                        Pressure.Thresholds thresholds, MemoryTrace trace, Probe probe) {
        this.device = device;
        this.root = Budget.root(device, budget);
        this.weights = root.child("weights");
        this.activations = root.child("activations");
        this.workspace = root.child("workspace");
        this.cache = root.child("cache");
        this.tags = ThreadLocal.withInitial(() -> {
            Tags t = new Tags();
            t.current = activations;
            return t;
        });
        this.thresholds = thresholds;
        this.trace = trace;
        this.probe = probe;
        this.pool = new CachingAllocator(withinBudget(raw), vm == null ? null : withinBudget(vm), budget, events);
        pool.observe((address, bytes, grew) -> {
            if (grew) cache.charge(bytes);
            else cache.credit(bytes);
            event(grew ? MemoryTrace.Kind.GROW : MemoryTrace.Kind.SHRINK, address, bytes, "cache", null);
        });
    }

    /** The driver's allocator, refusing what would take the device past its budget. */
    private RawAllocator withinBudget(RawAllocator raw) {
        return new RawAllocator() {
            public long allocate(long bytes) {
                return root.used() + bytes > root.limit() ? 0 : raw.allocate(bytes);
            }

            public void free(long address, long bytes) {
                raw.free(address, bytes);
            }
        };
    }

    private VirtualMemory withinBudget(VirtualMemory vm) {
        return new VirtualMemory() {
            public long granularity() { return vm.granularity(); }
            public long reserve(long bytes) { return vm.reserve(bytes); }
            public boolean map(long address, long bytes) { return root.used() + bytes <= root.limit() && vm.map(address, bytes); }
            public void unmap(long address, long bytes) { vm.unmap(address, bytes); }
            public void release(long address, long bytes) { vm.release(address, bytes); }
        };
    }

    public String device() {
        return device;
    }

    public synchronized void addListener(MemoryListener l) {
        listeners.add(l);
    }

    /** Stops telling {@code l} (a residency manager that closed) about pressure and failed allocations. */
    public synchronized void removeListener(MemoryListener l) {
        listeners.remove(l);
    }

    public synchronized void injectFaults(FaultInjector f) {
        this.faults = f == null ? FaultInjector.NONE : f;
    }

    /**
     * Charges what is allocated until the scope closes to {@code category} (weights, activations,
     * workspace) and tags it with {@code op} (null: keep the current op).
     */
    public Scope tag(String category, String op) {
        Tags t = tags.get();
        return chargeTo(switch (category) {
            case "weights" -> weights;
            case "workspace" -> workspace;
            case "activations" -> t.job != null ? t.job : activations;
            default -> throw new IllegalArgumentException("unknown memory category '" + category + "'");
        }, op);
    }

    /** Charges what this thread allocates until the scope closes to {@code node} (a node of this ledger), tagged with {@code op}. */
    public Scope chargeTo(Budget node, String op) {
        Tags t = tags.get();
        Budget before = t.current;
        String opBefore = t.op;
        t.current = node;
        if (op != null) t.op = op;
        return () -> {
            t.current = before;
            t.op = opBefore;
        };
    }

    /**
     * Charges what this thread allocates until the scope closes to its weights: the model node it
     * already charges to ({@link #chargeTo} a {@code weights/<model>}), else the weights category.
     */
    public synchronized Scope weightsScope(String op) {
        Budget c = tags.get().current, node = weights;
        for (Budget b = c; b != null; b = b.parent()) if (b == weights) node = c;
        return chargeTo(node, op);
    }

    /** The ledger node of one model's weights, {@code weights/<model>}, made on first use. */
    public synchronized Budget weights(String model) {
        for (Budget b : weights.children()) if (b.name().equals(model)) return b;
        return weights.child(model);
    }

    /** Detaches {@code weights/<model>} (it must hold nothing: see {@link Budget#close}). */
    public synchronized void dropWeights(String model) {
        for (Budget b : List.copyOf(weights.children())) if (b.name().equals(model)) b.close();
    }

    /** A job's activations, charged to their own ledger node (limit: Long.MAX_VALUE for none); closing it audits for leaks. */
    public synchronized Scope job(String name, long limit) {
        Tags t = tags.get();
        Budget b = activations.child(name, limit);
        Budget before = t.job;
        Budget currentBefore = t.current;
        t.job = b;
        if (t.current == activations) t.current = b;
        event(MemoryTrace.Kind.JOB, 0, 0, null, "start");
        return () -> {
            synchronized (this) {
                t.job = before;
                t.current = currentBefore;
                if (b.used() != 0) {
                    List<String> ops = new ArrayList<>();
                    for (Buffer buf : live.values()) if (buf.charged == b) ops.add(buf.op + " " + Sizes.format(buf.bytes()));
                    throw new IllegalStateException("job '" + name + "' ended with " + Sizes.format(b.used()) + " of device memory live in "
                            + ops.size() + " buffers (" + String.join(", ", ops) + "): a leak");
                }
                b.close();
            }
        };
    }

    public DeviceBuffer allocate(long bytes) {
        return allocate(bytes, 0);
    }

    public synchronized DeviceBuffer allocate(long bytes, long stream) {
        long request = ++requests;
        List<String> tried = new ArrayList<>();
        String why = null;
        for (int attempt = 0; ; attempt++) {
            try {
                if (faults.fail(request, attempt)) throw new CachingAllocator.OutOfMemory(bytes, pool.stats());
                CachingAllocator.Block b = pool.allocate(bytes, stream);
                Tags t = tags.get();
                Budget to = t.current;
                cache.credit(b.size());
                try {
                    to.charge(b.size());
                } catch (Budget.Exceeded e) {
                    cache.charge(b.size());
                    pool.free(b);
                    why = "over the " + Sizes.format(e.node.limit()) + " budget of '" + e.node.path() + "'";
                    throw new CachingAllocator.OutOfMemory(bytes, pool.stats());
                }
                Buffer buf = new Buffer(b, b.size(), to, t.op);
                live.put(b.address(), buf);
                event(MemoryTrace.Kind.ALLOC, b.address(), b.size(), category(to), null);
                checkPressure();
                return buf;
            } catch (CachingAllocator.OutOfMemory e) {
                if (!nextRung(attempt, bytes, pool.growthFor(bytes), tried)) return fail(bytes, tried, why);
            }
        }
    }

    /** The ladder's next rung after failed attempt {@code attempt}: flush the cache, then evict; false when none is left. */
    private boolean nextRung(int attempt, long bytes, long growth, List<String> tried) {
        if (attempt == 0) {
            takeRung("flush-cache", Sizes.format(bytes));
            pool.emptyCache();
            tried.add("flush-cache");
            return true;
        }
        if (attempt == 1 && !listeners.isEmpty()) {
            // what the driver must newly back, less the room the budget still has
            long need = Math.max(1, growth - (root.limit() - root.used()));
            long freed = 0;
            for (MemoryListener l : List.copyOf(listeners)) freed += l.evict(need);
            takeRung("evict", Sizes.format(freed) + " freed");
            tried.add("evict");
            pool.emptyCache();
            return freed > 0;
        }
        return false;
    }

    /**
     * Charges {@code bytes} to {@code node} without allocating a block: memory the backend holds
     * outside the allocator (the CPU backend's weights are plain arrays), counted against the
     * budget all the same. Walks the same ladder as {@link #allocate}; give it back with {@link #unreserve}.
     */
    public synchronized void reserve(Budget node, long bytes) {
        List<String> tried = new ArrayList<>();
        for (int attempt = 0; ; attempt++) {
            try {
                node.charge(bytes);
                event(MemoryTrace.Kind.ALLOC, 0, bytes, category(node), null);
                checkPressure();
                return;
            } catch (Budget.Exceeded e) {
                if (!nextRung(attempt, bytes, bytes, tried)) {
                    fail(bytes, tried, "over the " + Sizes.format(e.node.limit()) + " budget of '" + e.node.path() + "'");
                }
            }
        }
    }

    /**
     * {@link #reserve} on the weights node this thread charges to: {@code weights/<model>} inside
     * {@link #chargeTo} that node, else the weights category. Returns the node charged.
     */
    public synchronized Budget reserveWeights(long bytes) {
        Budget c = tags.get().current, node = weights;
        for (Budget b = c; b != null; b = b.parent()) if (b == weights) node = c;
        reserve(node, bytes);
        return node;
    }

    /** Gives back what {@link #reserve} charged. */
    public synchronized void unreserve(Budget node, long bytes) {
        node.credit(bytes);
        event(MemoryTrace.Kind.FREE, 0, bytes, category(node), null);
        checkPressure();
    }

    private DeviceBuffer fail(long bytes, List<String> tried, String why) {
        MemoryStats s = pool.stats();
        event(MemoryTrace.Kind.OOM, 0, bytes, tags.get().current.name(), null);
        throw new DeviceOutOfMemory(device, bytes, root.limit(), s.allocated(), s.cached(), probe.free(), probe.total(), probe.otherProcesses(), tried, why);
    }

    public synchronized void free(DeviceBuffer buffer) {
        Buffer b = (Buffer) buffer;
        if (live.remove(b.address()) != b) throw new IllegalStateException("freeing a buffer that is not live: " + Sizes.format(b.bytes()) + " at " + b.address());
        pool.free(b.block);
        b.charged.credit(b.bytes());
        cache.charge(b.bytes());
        eventFor(MemoryTrace.Kind.FREE, b.address(), b.bytes(), category(b.charged), b.op, null);
        checkPressure();
    }

    /** Notes that work on {@code stream} uses {@code buffer}: freeing it then waits for that work (see {@link CachingAllocator#recordStream}). */
    public synchronized void recordStream(DeviceBuffer buffer, long stream) {
        pool.recordStream(((Buffer) buffer).block, stream);
    }

    /** Counts and traces a rung taken by someone above (the executor shrinking its tile). */
    public synchronized void rung(String name, String detail) {
        takeRung(name, detail);
    }

    private void takeRung(String name, String detail) {
        rungs.merge(name, 1L, Long::sum);
        event(MemoryTrace.Kind.RUNG, 0, 0, name, detail);
    }

    private void checkPressure() {
        long used = root.used() - cache.used();
        Pressure now = thresholds.of(used, root.limit());
        if (now == level) return;
        Pressure was = level;
        level = now;
        event(MemoryTrace.Kind.PRESSURE, 0, used, null, now.name().toLowerCase());
        for (MemoryListener l : List.copyOf(listeners)) l.pressureChanged(was, now, used, root.limit());
    }

    /** The trace's category of what is charged to {@code node}: its name, and a model's weights as weights/&lt;model&gt; (as its residency events). */
    private String category(Budget node) {
        return node.parent() == weights ? "weights/" + node.name() : node.name();
    }

    /** Traces an event of the current op (detail: the rung's or level's words, else null). */
    private void event(MemoryTrace.Kind kind, long address, long bytes, String category, String detail) {
        eventFor(kind, address, bytes, category, tags.get().op, detail);
    }

    private void eventFor(MemoryTrace.Kind kind, long address, long bytes, String category, String op, String detail) {
        if (trace == null) return;
        Budget job = tags.get().job;
        trace.add(kind, address, bytes, category, op, job == null ? null : job.name(), pool.allocated(), pool.reserved(), detail);
    }

    /** Traces a residency event (a model's weights loaded, evicted, reloaded) of {@code bytes} for {@code model}. */
    public synchronized void traceResidency(MemoryTrace.Kind kind, String model, long bytes, String detail) {
        eventFor(kind, 0, bytes, "weights/" + model, null, detail);
    }

    /** Gives back the cache of a stream about to be destroyed ({@link CachingAllocator#retire}). */
    public synchronized void retireStream(long stream) {
        pool.retire(stream);
    }

    /** Returns cached memory to the driver. */
    public synchronized void emptyCache() {
        pool.emptyCache();
    }

    public synchronized MemoryStats stats() {
        return pool.stats();
    }

    public Budget ledger() {
        return root;
    }

    public synchronized Pressure pressure() {
        return level;
    }

    /** Bytes that can still be allocated without exceeding the budget, counting the cache as free. */
    public synchronized long headroom() {
        return root.limit() - (root.used() - cache.used());
    }

    /** Rungs taken so far, by name, in the order first taken. */
    public synchronized Map<String, Long> rungs() {
        return Map.copyOf(rungs);
    }

    /** The trace, or null when tracing is off. */
    public MemoryTrace trace() {
        return trace;
    }

    /** Live bytes charged to weights, activations and workspace, by category. */
    public synchronized Map<String, Long> usedByCategory() {
        Map<String, Long> m = new LinkedHashMap<>();
        for (Budget b : root.children()) m.put(b.name(), b.used());
        return m;
    }

    /** Bytes in live buffers now. */
    public synchronized long allocatedBytes() {
        return pool.allocated();
    }

    /** The pressure thresholds, as fractions of the budget. */
    public Pressure.Thresholds thresholds() {
        return thresholds;
    }

    /**
     * Frees everything and returns it to the driver. Live buffers at this point are leaks: they
     * are freed, and the exception names their bytes by category and op.
     */
    @Override
    public synchronized void close() {
        List<Buffer> leaked = List.copyOf(live.values());
        for (Buffer b : leaked) free(b);
        pool.releaseAll();
        if (!leaked.isEmpty()) {
            Map<String, Long> by = new LinkedHashMap<>();
            for (Buffer b : leaked) by.merge(b.charged.name() + (b.op == null ? "" : " (" + b.op + ")"), b.bytes(), Long::sum);
            StringBuilder s = new StringBuilder();
            by.forEach((k, v) -> s.append(s.isEmpty() ? "" : ", ").append(k).append(' ').append(Sizes.format(v)));
            throw new IllegalStateException(device + " memory closed with " + leaked.size() + " live buffers: " + s + " (a leak)");
        }
    }
}
