package dev.headroom.runtime;

/**
 * The one way device memory is obtained: every op, weight and workspace goes through it, so the
 * numbers below are the whole truth about a backend's memory. (The caching allocator with budgets
 * and a degrade ladder replaces the simple implementation behind this interface.)
 */
public interface DeviceAllocator extends AutoCloseable {
    DeviceBuffer allocate(long bytes);

    void free(DeviceBuffer buffer);

    /** Bytes in live buffers now. */
    long allocatedBytes();

    /** Highest {@link #allocatedBytes} so far. */
    long peakBytes();

    /** How many times the driver was asked for memory. */
    long driverAllocations();

    /** Frees everything; live buffers at this point are leaks and are named in the exception. */
    @Override
    void close();
}
