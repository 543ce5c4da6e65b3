package dev.headroom.core.diagnose;

import java.util.List;

/**
 * The numbers an out-of-memory message states, in bytes; null where the message does not say.
 * {@code reservedUnallocated} is given by newer messages and derived (reserved - allocated) from
 * older ones; {@code thisProcess} is "Including non-PyTorch memory, this process has X in use".
 * {@code asyncAllocator} marks the message of PyTorch's cudaMallocAsync back-end ("Allocation on
 * device 0 would exceed allowed memory"), which states no reserve: memory its pool caches is then
 * indistinguishable from memory other processes hold.
 */
public record OomNumbers(Long requested, Integer gpu, Long total, Long free, Long allocated, Long reserved,
                         Long reservedUnallocated, Long thisProcess, List<ProcessUse> processes,
                         Long mpsAllocated, Long mpsOther, Long mpsMaxAllowed, boolean asyncAllocator) {

    /** "Process 1234 has 21.20 GiB memory in use". */
    public record ProcessUse(long pid, long bytes) {}

    public static final OomNumbers NONE = new OomNumbers(null, null, null, null, null, null, null, null, List.of(), null, null, null, false);

    public boolean any() {
        return requested != null || total != null || free != null || allocated != null || mpsAllocated != null;
    }

    /**
     * Bytes in use on the card by anything but this job's PyTorch allocator: other processes, and
     * this process's own memory outside PyTorch (CUDA context, library workspaces). Null when the
     * message does not give enough to tell.
     */
    public Long heldOutsidePyTorch() {
        if (total == null || free == null || asyncAllocator && thisProcess == null) return null;
        long used = total - free;
        long ours = thisProcess != null ? thisProcess : reserved != null ? reserved
                : allocated != null && reservedUnallocated != null ? allocated + reservedUnallocated : -1;
        if (ours < 0) return null;
        return Math.max(0, used - ours);
    }

    /** Bytes held by other processes, when the message lists them and names this process's share. */
    public Long otherProcesses() {
        if (thisProcess == null || total == null || free == null) return null;
        return Math.max(0, total - free - thisProcess);
    }
}
