package dev.headroom.runtime.memory;

/**
 * A snapshot of a caching allocator, named as PyTorch names them (torch.cuda.memory_stats):
 * allocated = bytes in live blocks; reserved = bytes of all segments; active = allocated here (no
 * streams pending); inactive_split = free bytes inside segments that also hold live blocks (the
 * fragmentation that can refuse a large request while reserved - allocated looks big). Read-only.
 */
public record MemoryStats(long allocated, long allocatedPeak, long reserved, long reservedPeak, long inactiveSplit,
                          long segments, long driverAllocations, long driverFrees, long cacheFlushes, long failures) {
}
