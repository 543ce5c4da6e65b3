package dev.headroom.runtime.memory;

/**
 * A driver's virtual-memory API (CUDA: cuMemAddressReserve, cuMemCreate + cuMemMap, cuMemUnmap):
 * address space is reserved once and physical pages are mapped into it and unmapped again, so one
 * segment can grow and shrink while its addresses stay contiguous. Sizes and addresses are
 * multiples of {@link #granularity}.
 */
public interface VirtualMemory {
    /** Physical page size: every map and unmap is a whole number of these (2 MiB on CUDA). */
    long granularity();

    /** Start of a new range of {@code bytes} of address space with nothing mapped, or 0 if refused. */
    long reserve(long bytes);

    /** Backs [address, address + bytes) with physical memory; false when the device has no room. */
    boolean map(long address, long bytes);

    void unmap(long address, long bytes);

    /** Gives back a range {@link #reserve} returned; nothing may be mapped in it. */
    void release(long address, long bytes);
}
