package dev.headroom.runtime.gpu;

import dev.headroom.cuda.Cudnn;
import dev.headroom.cuda.CudnnGraph;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * Finalises cuDNN's first-choice plans on worker threads while the job runs those shapes on engines
 * that ship compiled (HEADROOM_CONV_START=background, {@link Convolutions}). On a machine whose
 * driver JIT cache is empty, finalising the 17 fused plans of RRDBNet's first 256 tile took 6.08 s
 * one after another on the session's thread (H200, `scripts/device-bench coldstart`, slowest 0.71 s),
 * while the precompiled start took 0.58 s but ran 21x slower; spread over workers the compilation
 * takes about its slowest shape plus the rest divided by the workers (not yet measured).
 *
 * <p>Each worker has a cuDNN handle of its own (cuDNN handles must not be shared between threads at
 * once). The plan a worker builds is thrown away: what it leaves behind is its kernel, compiled
 * (cuDNN's run-time compiled kernels go through the driver's JIT cache), and the engine
 * configuration's place in the heuristics ({@link ConvGraph.Origin}), which the session's thread
 * then rebuilds on its own handle ({@link ConvGraph#rebuild}), at the cost of a warm build. The
 * workers' handles are cuDNN's own memory, outside the ledger, as the session's handle is.
 */
final class BackgroundPlans implements AutoCloseable {
    /** How a shape's first choice was built: fused or not, and where its engine is in the heuristics. */
    record Built(Convolutions.Strategy strategy, ConvGraph.Origin origin) {}

    private final CudaDevice device;
    private final MemorySegment stream;
    private final ExecutorService workers;
    private final ThreadLocal<MemorySegment> handle = new ThreadLocal<>();
    private final List<MemorySegment> handles = new ArrayList<>();
    private final Map<Object, Future<Built>> pending = new HashMap<>();
    private final List<String> failures = java.util.Collections.synchronizedList(new ArrayList<>());

    BackgroundPlans(CudaDevice device, MemorySegment stream, int threads) {
        this.device = device;
        this.stream = stream;
        workers = Executors.newFixedThreadPool(threads, r -> {
            Thread t = new Thread(r, "cudnn-plans");
            t.setDaemon(true);
            return t;
        });
    }

    /** Workers for this machine: all cores but one, at most 8. */
    static int defaultThreads() {
        return Math.max(1, Math.min(8, Runtime.getRuntime().availableProcessors() - 1));
    }

    /** Starts building {@code key}'s first choice: the fused graph's first plan (when {@code fused} is not null), else the unfused one's. */
    synchronized void submit(Object key, ConvGraph.Spec fused, ConvGraph.Spec unfused, long maxWorkspace) {
        if (pending.containsKey(key)) return;
        pending.put(key, workers.submit(() -> build(key, fused, unfused, maxWorkspace)));
    }

    private Built build(Object key, ConvGraph.Spec fused, ConvGraph.Spec unfused, long maxWorkspace) {
        device.bind();
        MemorySegment h = handle.get();
        if (h == null) {
            h = Cudnn.get().createHandle(stream);
            handle.set(h);
            synchronized (handles) {
                handles.add(h);
            }
        }
        for (ConvGraph.Spec spec : new ConvGraph.Spec[] {fused, unfused}) {
            if (spec == null) continue;
            try (ConvGraph cg = ConvGraph.build(CudnnGraph.get(), h, spec, maxWorkspace, 1)) {
                if (cg != null) return new Built(spec.fused() ? Convolutions.Strategy.FUSED : Convolutions.Strategy.GRAPH, cg.origins.getFirst());
            } catch (RuntimeException e) {
                failures.add("background " + (spec.fused() ? "FUSED " : "GRAPH ") + key + ": " + e.getMessage());
            }
        }
        return null;
    }

    /** Waits at most {@code nanos} for {@code key}'s build; whether it has finished (false when never submitted). */
    boolean await(Object key, long nanos) {
        Future<Built> f;
        synchronized (this) {
            f = pending.get(key);
        }
        if (f == null) return false;
        try {
            f.get(nanos, TimeUnit.NANOSECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            return false;
        } catch (ExecutionException e) {
            return true;   // take() reports it
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
        return true;
    }

    /** Whether {@code key}'s build was submitted and has finished. */
    synchronized boolean done(Object key) {
        Future<Built> f = pending.get(key);
        return f != null && f.isDone();
    }

    /** {@code key}'s finished build (null when it found no plan), forgotten here; call after {@link #done}. */
    synchronized Built take(Object key) {
        Future<Built> f = pending.remove(key);
        try {
            return f == null ? null : f.get();
        } catch (ExecutionException e) {
            failures.add("background " + key + ": " + e.getCause());
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
    }

    /** Forgets {@code key}'s build (it finishes on its worker unseen). */
    synchronized void forget(Object key) {
        pending.remove(key);
    }

    List<String> failures() {
        return List.copyOf(failures);
    }

    /** Waits for builds in flight (a native finalisation cannot be interrupted), then destroys the workers' handles. */
    @Override
    public void close() {
        workers.shutdownNow();
        try {
            if (!workers.awaitTermination(60, TimeUnit.SECONDS)) return;   // a worker still in cuDNN keeps its handle
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return;
        }
        synchronized (handles) {
            for (MemorySegment h : handles) Cudnn.get().destroyHandle(h);
            handles.clear();
        }
    }
}
