package dev.headroom.runtime;

/**
 * The streamed layers of a model kept in host memory in the form a slot's copy reads (pinned, in
 * the device's layout, on a GPU; the model's own arrays on the CPU): what weight streaming copies
 * from. They outlive a set of slots ({@link WeightSlots}) when the residency manager evicts an
 * idle streamed model and keeps them as part of its host copy; {@link #slots} then makes slots
 * over them again without staging anything.
 *
 * <p>Shared by the slots that stream from them and by a residency manager's host copy, so they
 * are reference counted: made with one reference, {@link #retain} adds one, {@link #release}
 * drops one and the last frees the host memory.
 */
public abstract class StagedLayers {
    private int refs = 1;

    /** Host bytes held (counted against the residency manager's host cache when kept as a host copy). */
    public abstract long bytes();

    /**
     * {@code count} slots of {@code slotBytes} over these layers (the resident biases and slopes
     * uploaded again), charged to the node the calling thread charges weights to; the slots hold
     * a reference to these layers until they close.
     */
    public abstract WeightSlots slots(int count, long slotBytes);

    /**
     * Slots that {@code make} makes over these layers, holding a reference to them: one more with
     * {@code retain} (layers others hold too), else the layers' first; the reference is dropped
     * again if making them fails.
     */
    public final <T extends WeightSlots> T holding(boolean retain, java.util.function.Supplier<T> make) {
        if (retain) retain();
        try {
            return make.get();
        } catch (RuntimeException | Error e) {
            CloseSteps.afterFailure(e, this::release);
            throw e;
        }
    }

    /** Frees the host memory; called once, by the last {@link #release}. */
    protected abstract void free();

    /** One more holder; refused once the layers are freed. */
    public final synchronized StagedLayers retain() {
        if (refs == 0) throw new IllegalStateException("staged layers used after they were freed");
        refs++;
        return this;
    }

    /** Drops one holder; the last frees the host memory. */
    public final void release() {
        boolean last;
        synchronized (this) {
            if (refs == 0) throw new IllegalStateException("staged layers released more often than held");
            last = --refs == 0;
        }
        if (last) free();
    }
}
