package dev.headroom.runtime;

import java.util.HashMap;
import java.util.Map;

/**
 * Decides, per forward pass, whether it is issued op by op or replayed from a recording
 * ({@link Ops#record}: a CUDA graph), and owns the recordings. A pass is a shape plus the pointers
 * it reads and writes, since a recording freezes them.
 *
 * <p>A pass's life: its first run goes op by op (that run sets up what a recording needs:
 * convolution choices, workspace, constants); the second is recorded, then replayed; then
 * {@link #TRIALS} replays and as many op-by-op runs alternate, each timed from issue until the
 * caller's finish (which waits for the device), and the way with the faster best run is kept (the
 * best, not the mean: one run slowed by something else must not decide). The clock decides
 * because neither way always wins: on the H100, RRDBNet fp16 with 64x64 tiles ran in 3.0 ms
 * replayed against 4.3 ms op by op (issuing hundreds of small kernels cost more than running
 * them), and with 128x128 tiles in 4.7 ms against 4.2 ms.
 */
final class Replays implements AutoCloseable {
    /** A forward pass's shape and the pointers it reads and writes: what one recording replays. */
    record Pass(int n, int h, int w, long input, int inputStride, long arena) {}

    /** What {@link #issue} did, for {@link #finished}. */
    enum Trial { NONE, REPLAY, OP_BY_OP }

    static final int TRIALS = 3;
    private static final int MAX_PASSES = 32;

    private static final class State {
        Ops.Recording recording;
        boolean refused;
        Boolean replay;   // decided; null while on trial
        int replayRuns, opRuns;
        long replayBest = Long.MAX_VALUE, opBest = Long.MAX_VALUE;
    }

    private final Ops ops;
    private final Map<Pass, State> passes = new HashMap<>();
    private long replays;

    Replays(Ops ops) {
        this.ops = ops;
    }

    /** How many passes ran as replays. */
    long count() {
        return replays;
    }

    /** Issues {@code pass}, op by op ({@code forward}) or as a replay; hand the result to {@link #finished} with the pass's time. */
    Trial issue(Pass pass, Runnable forward) {
        State s = passes.get(pass);
        if (s == null) {
            if (passes.size() >= MAX_PASSES) close();
            passes.put(pass, new State());
            forward.run();
            return Trial.NONE;
        }
        if (s.refused || Boolean.FALSE.equals(s.replay)) {
            forward.run();
            return Trial.NONE;
        }
        if (s.recording == null) {
            record(s, forward);
            return Trial.NONE;   // the first replay of a recording is not a fair sample
        }
        boolean trial = s.replay == null;
        if (trial && (s.replayRuns + s.opRuns) % 2 == 1) {
            forward.run();
            return Trial.OP_BY_OP;
        }
        if (s.recording.replay()) {
            replays++;
            return trial ? Trial.REPLAY : Trial.NONE;
        }
        s.recording.close();   // stale: something it points at was replaced
        record(s, forward);
        return Trial.NONE;
    }

    /** Records the pass and replays it (recording runs nothing), or runs it op by op where the backend will not record it. */
    private void record(State s, Runnable forward) {
        s.recording = ops.record(forward);
        if (s.recording == null) {
            s.refused = true;
            forward.run();
            return;
        }
        if (!s.recording.replay()) throw new IllegalStateException("a recording made just now would not replay");
        replays++;
    }

    /** The time of a pass {@link #issue} ran as {@code trial}; after the last trial the faster way is kept. */
    void finished(Pass pass, Trial trial, long nanos) {
        State s = passes.get(pass);
        if (s == null || trial == Trial.NONE) return;
        if (trial == Trial.REPLAY) {
            s.replayRuns++;
            s.replayBest = Math.min(s.replayBest, nanos);
        } else {
            s.opRuns++;
            s.opBest = Math.min(s.opBest, nanos);
        }
        if (s.replayRuns >= TRIALS && s.opRuns >= TRIALS) {
            s.replay = s.replayBest <= s.opBest;
            if (!s.replay && s.recording != null) {
                s.recording.close();
                s.recording = null;
            }
        }
    }

    /** Frees every recording and forgets every pass. */
    @Override
    public void close() {
        for (State s : passes.values()) if (s.recording != null) s.recording.close();
        passes.clear();
    }
}
