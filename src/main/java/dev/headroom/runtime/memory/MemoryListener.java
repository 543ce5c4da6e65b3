package dev.headroom.runtime.memory;

/**
 * Told by a device's memory when its pressure level changes, and asked to give memory back when an
 * allocation fails even after the cache was flushed (the residency manager evicts idle weights).
 */
public interface MemoryListener {
    default void pressureChanged(Pressure from, Pressure to, long used, long budget) {}

    /** Free what you can towards {@code bytes}; return how many bytes were freed (0 if nothing). */
    default long evict(long bytes) {
        return 0;
    }
}
