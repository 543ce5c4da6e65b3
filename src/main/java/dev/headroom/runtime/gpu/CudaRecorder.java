package dev.headroom.runtime.gpu;

import dev.headroom.cuda.CudaException;
import dev.headroom.cuda.StreamCapture;
import dev.headroom.runtime.Ops;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * A session's recorded forward passes (CUDA graphs captured on its stream, {@link StreamCapture},
 * in thread-local mode so other sessions' threads cannot spoil a capture). A recording freezes
 * pointers, so while one is being made nothing may be allocated or freed ({@link #notWhileCapturing}),
 * and whatever replaces something recordings point at (the workspace, a convolution plan) first
 * bumps the epoch ({@link #invalidate}): a recording from an older epoch refuses to replay.
 */
final class CudaRecorder implements AutoCloseable {
    private final MemorySegment stream;
    private boolean capturing;
    private long epoch;
    private final Set<Recording> recordings = new HashSet<>();
    /** Why recordings failed (`bench --json` lists them as capture_failures). */
    private final List<String> failures = new ArrayList<>();

    CudaRecorder(MemorySegment stream) {
        this.stream = stream;
    }

    /** Whether a recording is being made now (nothing may wait for the device). */
    boolean capturing() {
        return capturing;
    }

    /**
     * Records {@code work} on the stream as a CUDA graph. Null, with the reason kept for
     * {@link #failures}, when the work did something a recording cannot hold: allocated or freed
     * (a temporary freed after capture could be handed to someone else before a replay writes to
     * it), or a call CUDA forbids during capture. The work has then not run.
     */
    Ops.Recording record(Runnable work) {
        StreamCapture sc = StreamCapture.get();
        long at = epoch;
        sc.begin(stream);
        RuntimeException failure = null;
        capturing = true;
        try {
            work.run();
        } catch (RuntimeException e) {
            failure = e;
        } finally {
            capturing = false;
        }
        MemorySegment graph = null;
        try {
            graph = sc.end(stream);
        } catch (CudaException e) {
            if (failure == null) failure = e;
        }
        try {
            if (failure == null && epoch == at) {
                Recording r = new Recording(sc.instantiate(graph), at);
                recordings.add(r);
                return r;
            }
        } catch (CudaException e) {
            failure = e;
        } finally {
            if (graph != null && !graph.equals(MemorySegment.NULL)) sc.destroyGraph(graph);
        }
        failures.add(failure == null ? "the workspace or a convolution plan changed while recording" : failure.getMessage());
        return null;
    }

    List<String> failures() {
        return List.copyOf(failures);
    }

    /** Refuses {@code what} (an allocation, a free) while a recording is being made. */
    void notWhileCapturing(String what) {
        if (capturing) throw new IllegalStateException("cannot " + what + " while recording a CUDA graph: the recording would point at memory it does not own");
    }

    /** Marks every recording made so far as stale, because something it points at is about to be freed or replaced. */
    void invalidate(String what) {
        notWhileCapturing(what);
        epoch++;
    }

    /** Destroys every recording (call once the stream is idle). */
    @Override
    public void close() {
        for (Recording r : List.copyOf(recordings)) r.close();
    }

    /** An instantiated CUDA graph of one forward pass. */
    private final class Recording implements Ops.Recording {
        private MemorySegment exec;
        private final long epoch;

        Recording(MemorySegment exec, long epoch) {
            this.exec = exec;
            this.epoch = epoch;
        }

        @Override
        public boolean replay() {
            if (exec == null || epoch != CudaRecorder.this.epoch) return false;
            StreamCapture.get().launch(exec, stream);
            return true;
        }

        @Override
        public void close() {
            if (exec == null) return;
            StreamCapture.get().destroyExec(exec);
            exec = null;
            recordings.remove(this);
        }
    }
}
