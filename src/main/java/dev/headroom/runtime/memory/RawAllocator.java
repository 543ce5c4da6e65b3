package dev.headroom.runtime.memory;

/**
 * What a backend's driver gives: whole segments of memory, by address. The caching allocator calls
 * it only to grow or shrink its pool, never per request. {@link #allocate} returns 0 when the
 * device is out of memory (the caller then frees its cache and retries, or fails with numbers).
 */
public interface RawAllocator {
    /** Address of a new segment of exactly {@code bytes}, or 0 if the device has no room. */
    long allocate(long bytes);

    void free(long address, long bytes);
}
