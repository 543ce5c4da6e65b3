package dev.headroom.runtime;

/**
 * What every backend's {@link WeightSlots} share: the staged layers they hold a reference to, the
 * bytes of each slot, and a {@link #close} that runs once, frees the backend's slots
 * ({@link #freeSlots}) and then drops the reference to the staged layers, also when freeing the
 * slots fails: a wait that fails on a GPU is the context's sticky error, after which no copy reads
 * the pinned staging any more, so keeping it would only leak it for the life of the process.
 */
public abstract class StagedSlots<S extends StagedLayers> implements WeightSlots {
    protected final S staging;
    private final long slotBytes;
    private boolean closed;

    protected StagedSlots(S staging, long slotBytes) {
        this.staging = staging;
        this.slotBytes = slotBytes;
    }

    @Override
    public final S staging() {
        return staging;
    }

    @Override
    public final long slotBytes() {
        return slotBytes;
    }

    /** Waits for the slots' copies and uses and frees them and what they keep resident; called once, before the staging is released. */
    protected abstract void freeSlots();

    /** For a constructor that fails: frees the slots made so far and leaves the staging's reference to the caller, who releases it. */
    protected final void closeKeepingStaging() {
        if (!markClosed()) return;
        freeSlots();
    }

    /** Frees the slots and then releases the staging even if freeing them throws (whose failure is then thrown, a failed release suppressed on it). */
    @Override
    public final void close() {
        if (!markClosed()) return;
        CloseSteps.run(this::freeSlots, staging::release);
    }

    /** True for the one caller that closes (two threads closing at once free nothing twice). */
    private synchronized boolean markClosed() {
        if (closed) return false;
        closed = true;
        return true;
    }
}
