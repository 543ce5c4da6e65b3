package dev.headroom.server;

/**
 * A running job's latest progress, noted by its thread at every tile and written to the store by
 * another thread ({@link Workers}' progress flusher, and the job's end). The job's thread never
 * waits for a store write: {@link #note} takes only a short lock that no write holds (a durable
 * write, SQLite's fsync under its one lock, took place between the tiles of every job when the
 * flush held it). Writes are one at a time, each of the latest count taken when it starts, so the
 * store never goes back to an older count.
 */
final class LatestProgress {
    /** Where a count goes (the store). */
    interface Writer {
        void write(int done, int total);
    }

    private final Object writing = new Object();
    /** Guarded by this. */
    private int done, total;
    private boolean dirty;

    /** The job's thread: the latest count, for the next {@link #flush}. */
    synchronized void note(int done, int total) {
        this.done = done;
        this.total = total;
        dirty = true;
    }

    /** Writes the latest count if the store does not have it yet; a failed write leaves it for the next flush. */
    void flush(Writer to) {
        synchronized (writing) {
            int d, t;
            synchronized (this) {
                if (!dirty) return;
                d = done;
                t = total;
                dirty = false;
            }
            boolean written = false;
            try {
                to.write(d, t);
                written = true;
            } finally {
                if (!written) {
                    synchronized (this) {
                        dirty = true;
                    }
                }
            }
        }
    }
}
