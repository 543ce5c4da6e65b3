package dev.headroom.runtime.memory;

/**
 * A snapshot of a caching allocator, named as PyTorch names them (torch.cuda.memory_stats):
 * allocated = bytes in live blocks; active = allocated plus freed blocks still waiting for another
 * stream's event; reserved = bytes the driver backs (plain segments plus mapped pages of expandable
 * ones); inactive_split = reserved bytes that are free but inside segments that also hold live
 * blocks (the fragmentation that can refuse a large request while reserved - allocated looks big).
 * Driver calls count segment allocations and page maps (and their frees and unmaps). Read-only.
 */
public record MemoryStats(long allocated, long allocatedPeak, long active, long reserved, long reservedPeak, long inactiveSplit,
                          long segments, long driverAllocations, long driverFrees, long cacheFlushes, long failures) {

    /** Reserved bytes not in live blocks: what flushing the cache could give back at best. */
    public long cached() {
        return reserved - active;
    }
}
