package dev.headroom.runtime.gpu;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * Built cuDNN execution plans, and the threads and handles that build them, owned once per device
 * and shared by every session on it (the bookkeeping; the native calls are {@link Native}, cuDNN's
 * in {@link CudnnPlans}). Before it, every session built its own plans on its own handle (the
 * server: 55-106 ms of each job on the H200, g16) and, in the background start, held up to 8 worker
 * threads with cuDNN handles of its own, which the server's session pool multiplied.
 *
 * <p>What is shared, and why it is safe:
 * <ul>
 * <li><b>Graphs</b> (an operation graph with its one finalised plan), by pool key (the shape's spec
 *     and the engine configuration's place in the heuristics). A graph is lent to one session at a
 *     time ({@link #lend}, {@link #build}) and given back when that session no longer runs it
 *     ({@link #giveBack}: between jobs, or at close); idle ones wait in a pool of at most
 *     {@code maxIdle}, the least recently given back destroyed first. cuDNN is thread-safe as long as
 *     threads do not use one handle at once, and a plan is executed with the handle that
 *     {@code cudnnBackendExecute} is given, on that handle's stream (the frontend's execute takes any
 *     handle of a compatible device). Execution plans shared across threads at once have known
 *     thread-safety limits (cuDNN's answer in pytorch/pytorch#103939, which made PyTorch's plan
 *     caches thread-local, and #191744 shares them again as serialised plans): hence one borrower
 *     at a time, never two.
 * <li><b>Handles</b>: at most {@code maxHandles}, made when first needed, each used by one thread at a
 *     time ({@link #withHandle}); plans are finalised on them and they live until {@link #close},
 *     after every graph, because a plan keeps the handle it was finalised with. Their device memory is
 *     cuDNN's own, outside the ledger: {@link #stats} reports it as measured around each creation
 *     (free device bytes before and after).
 * <li><b>Workers</b>: at most {@code maxThreads} daemon threads for builds in the background
 *     ({@link #background}); one build per key on the device however many sessions ask, its result
 *     kept for later askers ({@link #known}).
 * </ul>
 * {@link #close} is an audit: it names the graphs still lent, and a build still inside cuDNN after
 * the wait, and what it therefore kept, in the exception it throws; it never gives up silently.
 * What it kept is not kept forever: the last of them to come back (the last lent graph given back,
 * the last late build ending) destroys the handles, once ({@link #stats}: {@code released_after_close}).
 */
final class PlanService<G> implements AutoCloseable {
    /** The native side: handles, and destroying a graph. */
    interface Native<G> {
        Object createHandle();

        void destroyHandle(Object handle);

        void destroy(G graph);

        /** Free device bytes now (to report what a handle took), or -1 where unknown. */
        long freeBytes();
    }

    /** Background results kept for later askers; beyond it the finished ones are forgotten (built again when asked). */
    static final int MAX_KNOWN = 4096;

    private final String name;
    private final Native<G> nat;
    private final int maxHandles, maxIdle;
    private final long closeWaitNanos;
    private final ThreadPoolExecutor workers;
    /** Handles not in use now, and all handles made. */
    private final ArrayDeque<Object> freeHandles = new ArrayDeque<>();
    private final List<Object> handles = new ArrayList<>();
    private int handlesMaking, sessionBuilds;
    /** Graphs being destroyed outside the lock now (a plan needs its handle until it is gone). */
    private int destroying;
    private long handleBytes, handleNanos;
    /** Idle graphs by pool key, and the order they were given back in (oldest first) for eviction. */
    private final Map<Object, ArrayDeque<G>> idle = new HashMap<>();
    private final LinkedHashMap<G, Object> idleOrder = new LinkedHashMap<>();
    /** Graphs lent to sessions now, with their pool keys. */
    private final Map<G, Object> lent = new IdentityHashMap<>();
    /** Background builds by key: running, or done and kept for later askers. */
    private final Map<Object, CompletableFuture<Object>> known = new HashMap<>();
    private final Map<Object, Long> running = new HashMap<>();
    private long builds, buildNanos, lends, backgroundBuilds, evicted;
    private boolean closed;
    /** Set by a close that kept the handles; cleared by the one that destroys them later ({@link #releaseIfLast}). */
    private boolean kept;
    private long releasedAfterClose, lateReleaseFailures;
    private String lateReleaseFailure;

    PlanService(String name, Native<G> nat, int maxThreads, int maxHandles, int maxIdle, long closeWaitNanos) {
        if (maxThreads < 1 || maxHandles < 1 || maxIdle < 0) throw new IllegalArgumentException("plan service " + name + ": threads "
                + maxThreads + ", handles " + maxHandles + ", idle graphs " + maxIdle + "; need at least 1, 1 and 0");
        this.name = name;
        this.nat = nat;
        this.maxHandles = maxHandles;
        this.maxIdle = maxIdle;
        this.closeWaitNanos = closeWaitNanos;
        workers = new ThreadPoolExecutor(maxThreads, maxThreads, 30, TimeUnit.SECONDS, new LinkedBlockingQueue<>(), r -> {
            Thread t = new Thread(r, "cudnn-plans " + name);
            t.setDaemon(true);
            return t;
        });
        workers.allowCoreThreadTimeOut(true);   // idle workers end; their handles stay in the pool
    }

    /** Worker threads for this machine: all cores but one, at most 8. */
    static int defaultThreads() {
        return Math.max(1, Math.min(8, Runtime.getRuntime().availableProcessors() - 1));
    }

    /** Runs {@code work} with a handle of the service's own, waiting while all {@code maxHandles} are in use. */
    <T> T withHandle(Function<Object, T> work) {
        Object h = borrowHandle();
        try {
            return work.apply(h);
        } finally {
            synchronized (this) {
                freeHandles.push(h);
                notifyAll();
            }
            releaseIfLast();
        }
    }

    private Object borrowHandle() {
        synchronized (this) {
            while (true) {
                if (closed) throw new IllegalStateException("plan service " + name + " is closed");
                if (!freeHandles.isEmpty()) return freeHandles.pop();
                if (handles.size() + handlesMaking < maxHandles) {
                    handlesMaking++;
                    break;
                }
                try {
                    wait();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("interrupted waiting for one of " + name + "'s " + maxHandles + " cuDNN handles", e);
                }
            }
        }
        long t0 = System.nanoTime(), free0 = nat.freeBytes();
        Object h = null;
        try {
            h = nat.createHandle();
        } finally {
            long free1 = nat.freeBytes(), took = System.nanoTime() - t0;
            synchronized (this) {
                handlesMaking--;
                if (h != null) {
                    handles.add(h);
                    handleNanos += took;
                    if (free0 >= 0 && free1 >= 0) handleBytes += Math.max(0, free0 - free1);
                }
                notifyAll();
            }
            if (h == null) releaseIfLast();   // a handle that could not be made during an audited close
        }
        return h;
    }

    /** An idle graph for {@code key}, now lent to the caller alone; null when none is idle. */
    synchronized G lend(Object key) {
        ArrayDeque<G> q = idle.get(key);
        if (q == null || q.isEmpty()) return null;
        G g = q.pop();
        if (q.isEmpty()) idle.remove(key);
        idleOrder.remove(g);
        lent.put(g, key);
        lends++;
        return g;
    }

    /** A graph for {@code key} built now on the calling thread with a service handle, lent to the caller; null when {@code build} finds none. */
    G build(Object key, Function<Object, G> build) {
        long t0 = System.nanoTime();
        synchronized (this) {
            sessionBuilds++;
        }
        G g = null;
        try {
            g = withHandle(build);
        } finally {
            synchronized (this) {   // one step: no moment where the graph is neither building nor lent
                sessionBuilds--;
                if (g != null) lent.put(g, key);
            }
            releaseIfLast();
        }
        synchronized (this) {
            builds++;
            buildNanos += System.nanoTime() - t0;
        }
        return g;
    }

    /** Takes back a graph lent by {@link #lend} or {@link #build}: idle for the next borrower (destroyed once the service is closed). */
    void giveBack(Object key, G g) {
        G drop = null;
        synchronized (this) {
            if (lent.remove(g) == null) throw new IllegalStateException("plan service " + name + ": a graph given back that was not lent (" + key + ")");
            if (closed || maxIdle == 0) {
                drop = g;
            } else {
                idle.computeIfAbsent(key, k -> new ArrayDeque<>()).push(g);
                idleOrder.put(g, key);
                if (idleOrder.size() > maxIdle) {
                    var oldest = idleOrder.entrySet().iterator().next();
                    drop = oldest.getKey();
                    idleOrder.remove(drop);
                    ArrayDeque<G> q = idle.get(oldest.getValue());
                    q.remove(drop);
                    if (q.isEmpty()) idle.remove(oldest.getValue());
                    evicted++;
                }
            }
            if (drop != null) destroying++;
        }
        if (drop == null) return;
        try {
            nat.destroy(drop);
        } finally {
            synchronized (this) {
                destroying--;
            }
            releaseIfLast();
        }
    }

    /**
     * Starts {@code work} for {@code key} on a worker with a service handle, once per key on this device:
     * a later call with the same key gets the same future (running or done). {@code work} may leave
     * what it built idle in the pool ({@link #pool}).
     */
    synchronized CompletableFuture<Object> background(Object key, Function<Object, Object> work) {
        CompletableFuture<Object> f = known.get(key);
        if (f != null) return f;
        if (closed) return CompletableFuture.failedFuture(new IllegalStateException("plan service " + name + " is closed"));
        if (known.size() >= MAX_KNOWN) known.values().removeIf(CompletableFuture::isDone);   // a server meeting ever new sizes
        CompletableFuture<Object> made = new CompletableFuture<>();
        known.put(key, made);
        workers.execute(() -> {
            synchronized (this) {
                running.put(key, System.nanoTime());
            }
            Object result;
            try {
                result = withHandle(work);
            } catch (Throwable t) {
                synchronized (this) {
                    running.remove(key);
                    known.remove(key, made);   // a later ask tries again (a handle that could not be made now may be later)
                }
                releaseIfLast();
                made.completeExceptionally(t);
                return;
            }
            synchronized (this) {
                running.remove(key);
                backgroundBuilds++;
            }
            releaseIfLast();
            made.complete(result);
        });
        return made;
    }

    /** {@code key}'s background build, running or done; null when none was started. */
    synchronized CompletableFuture<Object> known(Object key) {
        return known.get(key);
    }

    /** Puts a graph built by background work (not lent to anyone) in the idle pool. */
    void pool(Object key, G g) {
        synchronized (this) {
            lent.put(g, key);
        }
        giveBack(key, g);
    }

    /** Counts for dashboards and `--json`: bounds, what is made, held and lent, and the handles' device memory as measured. */
    synchronized Map<String, Object> stats() {
        Map<String, Object> s = new LinkedHashMap<>();
        s.put("threads_max", workers.getMaximumPoolSize());
        s.put("threads_now", workers.getPoolSize());
        s.put("handles_max", maxHandles);
        s.put("handles", handles.size());
        s.put("handle_bytes_outside_ledger", handleBytes);
        s.put("handle_create_ms", Math.round(handleNanos / 1e4) / 100.0);
        s.put("builds", builds);
        s.put("build_ms", Math.round(buildNanos / 1e4) / 100.0);
        s.put("background_builds", backgroundBuilds);
        s.put("lends", lends);
        s.put("idle", idleOrder.size());
        s.put("idle_max", maxIdle);
        s.put("evicted", evicted);
        s.put("lent", lent.size());
        s.put("released_after_close", releasedAfterClose);
        if (lateReleaseFailures > 0) s.put("release_after_close_failures", lateReleaseFailures + ", last: " + lateReleaseFailure);
        return s;
    }

    /**
     * Stops the workers (a build inside cuDNN cannot be interrupted: waits for it up to the close
     * wait), fails the builds it never started, destroys the idle graphs and then the handles, and
     * throws an {@link IllegalStateException} naming what it could not free: graphs still lent (a
     * session not closed first), builds still running on workers or sessions' threads, and the
     * handles kept for them. The last of those to come back destroys the kept handles ({@link #releaseIfLast}).
     */
    @Override
    public void close() {
        List<G> drop;
        synchronized (this) {
            if (closed) return;
            closed = true;
            drop = new ArrayList<>(idleOrder.keySet());
            idleOrder.clear();
            idle.clear();
            notifyAll();
        }
        workers.shutdownNow();
        boolean stopped;
        try {
            stopped = workers.awaitTermination(closeWaitNanos, TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            stopped = false;
        }
        List<String> problems = new ArrayList<>();
        synchronized (this) {
            // builds the workers never started (shutdownNow dropped them): their askers would wait forever
            for (var e : known.entrySet()) {
                if (!e.getValue().isDone() && !running.containsKey(e.getKey())) {
                    e.getValue().completeExceptionally(new IllegalStateException("plan service " + name + " closed before the build of " + e.getKey() + " started"));
                }
            }
        }
        for (G g : drop) {
            try {
                nat.destroy(g);
            } catch (RuntimeException e) {
                problems.add("destroying an idle graph failed: " + e.getMessage());
            }
        }
        synchronized (this) {
            if (!stopped || !running.isEmpty()) {
                List<String> keys = new ArrayList<>();
                long now = System.nanoTime();
                for (var e : running.entrySet()) keys.add(e.getKey() + " (" + (now - e.getValue()) / 1_000_000 + " ms)");
                problems.add((running.isEmpty() ? "worker threads" : running.size() + " build(s)") + " still inside cuDNN after "
                        + closeWaitNanos / 1_000_000 + " ms: " + keys);
            }
            if (!lent.isEmpty()) problems.add(lent.size() + " graph(s) still lent to sessions (close every session before the device): " + lent.values());
            // a build on a session's thread (build) is no worker's: the wait did not see the handle it holds or is making
            if (sessionBuilds > 0) problems.add(sessionBuilds + " build(s) on sessions' threads still running (close every session before the device)");
            if (quiet()) {   // workers past their builds, or never to start one (closed), hold no handle
                for (Object h : handles) {
                    try {
                        nat.destroyHandle(h);
                    } catch (RuntimeException e) {
                        problems.add("destroying a cuDNN handle failed: " + e.getMessage());
                    }
                }
                handles.clear();
                freeHandles.clear();
            } else {
                kept = true;
                if (destroying > 0) problems.add(destroying + " graph(s) being destroyed by a session giving them back");
                problems.add("so its " + handles.size() + " cuDNN handle(s) (" + handleBytes + " bytes of device memory outside the ledger) were kept until the last of these comes back");
            }
        }
        if (!problems.isEmpty()) throw new IllegalStateException("plan service " + name + " closed with: " + String.join("; ", problems));
    }

    /** No handle in use or being made, no graph lent or being destroyed, no build running: the handles may go. */
    private boolean quiet() {
        return lent.isEmpty() && running.isEmpty() && sessionBuilds == 0 && handlesMaking == 0 && destroying == 0
                && freeHandles.size() == handles.size();
    }

    /**
     * Called by everything that comes back (a graph given back, a build ending, a handle returned):
     * after a close that kept the handles, the last of them destroys them, once; its graph is already
     * destroyed (a plan keeps its handle). A failure has no caller to go to (it may be a worker's):
     * {@link #stats} counts it and names the last.
     */
    private void releaseIfLast() {
        List<Object> go;
        synchronized (this) {
            if (!kept || !quiet()) return;
            kept = false;
            go = new ArrayList<>(handles);
            handles.clear();
            freeHandles.clear();
            releasedAfterClose++;
        }
        for (Object h : go) {
            try {
                nat.destroyHandle(h);
            } catch (RuntimeException e) {
                synchronized (this) {
                    lateReleaseFailures++;
                    lateReleaseFailure = "destroying a cuDNN handle failed: " + e.getMessage();
                }
            }
        }
    }
}
