package dev.headroom.runtime.memory;

/**
 * Events on a device's streams, as the caching allocator needs them: a block that was used on
 * another stream than the one it was allocated on is only reused once an event recorded on each of
 * those streams at free time has completed (CUDA: cuEventRecord, cuEventQuery). Handles are opaque.
 */
public interface StreamEvents {
    /** Records an event on {@code stream} now and returns its handle. */
    long record(long stream);

    /** Whether the work before the event has finished; never blocks. */
    boolean done(long event);

    void destroy(long event);

    /**
     * Waits until the work queued on {@code stream} so far is done: before memory that work may
     * still touch goes back to the driver. Only that stream waits, never the whole device.
     */
    default void synchronize(long stream) {}

    /** For backends with one stream: using a block on another stream is then a bug. */
    StreamEvents SINGLE_STREAM = new StreamEvents() {
        @Override
        public long record(long stream) {
            throw new IllegalStateException("this device runs on one stream; stream " + stream + " is unknown");
        }

        @Override
        public boolean done(long event) {
            return true;
        }

        @Override
        public void destroy(long event) {}
    };
}
