package dev.headroom.runtime.gpu;

import dev.headroom.core.Sizes;
import dev.headroom.cuda.CudaException;
import dev.headroom.cuda.Driver;
import dev.headroom.cuda.Nvml;
import dev.headroom.cuda.VmmAndEvents;
import dev.headroom.runtime.memory.DeviceMemory;
import dev.headroom.runtime.memory.MemoryOptions;
import dev.headroom.runtime.memory.RawAllocator;
import dev.headroom.runtime.memory.StreamEvents;
import dev.headroom.runtime.memory.VirtualMemory;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.Map;

/**
 * The CUDA driver under a {@link DeviceMemory}: plain segments through cuMemAlloc (the small pool,
 * and the large one in plain mode), expandable large pools through the virtual-memory API in
 * physical handles of {@link #PAGE} (one cuMemCreate + cuMemMap per page, so any page can be
 * unmapped on its own), events for stream-aware reuse, and cuMemGetInfo for error reports.
 */
final class CudaMemory {
    /** Physical handle size of expandable segments (PyTorch's expandable segments use the same for large pools). */
    static final long PAGE = 20L << 20;

    private CudaMemory() {}

    static DeviceMemory open(Driver cu, int device, MemoryOptions options) {
        long total = cu.totalMemory(cu.device(device));
        long budget = options.budget() > 0 ? Math.min(options.budget(), total) : total;
        RawAllocator raw = new RawAllocator() {
            public long allocate(long bytes) {
                try {
                    return cu.memAlloc(bytes);
                } catch (CudaException e) {
                    if (e.outOfMemory()) return 0;
                    throw e;
                }
            }

            public void free(long address, long bytes) {
                // the allocator has waited for the stream whose pool held it (StreamEvents.synchronize)
                cu.memFree(address);
            }
        };
        VirtualMemory vm = options.expandable() ? virtual(cu, VmmAndEvents.get(), device) : null;
        DeviceMemory.Probe probe = new DeviceMemory.Probe() {
            public long free() { return cu.memInfo()[0]; }
            public long total() { return total; }
            public String otherProcesses() {
                try {
                    long self = ProcessHandle.current().pid();
                    StringBuilder s = new StringBuilder();
                    for (Nvml.Process p : Nvml.get().processes(device)) {
                        if (p.pid() == self) continue;
                        s.append(s.isEmpty() ? "" : ", ").append("pid ").append(p.pid()).append(' ').append(Sizes.format(p.usedBytes()));
                    }
                    return s.isEmpty() ? "none" : s.toString();
                } catch (RuntimeException | UnsatisfiedLinkError e) {   // NVML missing or refusing: say what the driver knows
                    long[] info = cu.memInfo();
                    return "unknown (NVML: " + e.getMessage() + "); " + Sizes.format(info[1] - info[0]) + " in use on the device by all processes";
                }
            }
        };
        return new DeviceMemory("cuda:" + device, budget, raw, vm, events(cu), options.thresholds(), options.newTrace(), probe);
    }

    private static VirtualMemory virtual(Driver cu, VmmAndEvents v, int device) {
        long g = v.granularity(device);
        long page = (PAGE + g - 1) / g * g;
        Map<Long, Long> handles = new HashMap<>();
        return new VirtualMemory() {
            public long granularity() {
                return page;
            }

            public long reserve(long bytes) {
                return v.reserve(bytes, g);   // alignment must be the driver's granularity (a power of two), not the page
            }

            public boolean map(long address, long bytes) {
                for (long a = address; a < address + bytes; a += page) {
                    long h = v.createAndMap(device, a, page);
                    if (h == 0) {
                        unmap(address, a - address);
                        return false;
                    }
                    handles.put(a, h);
                }
                return true;
            }

            public void unmap(long address, long bytes) {
                // work is queued asynchronously and the caching allocator takes a block back as
                // soon as it is issued, so the allocator has waited for the stream of the pool
                // these pages belong to (StreamEvents.synchronize; PyTorch's expandable segments
                // synchronise before unmapping too, but the whole device); this is rare (emptyCache)
                for (long a = address; a < address + bytes; a += page) v.unmapAndRelease(a, page, handles.remove(a));
            }

            public void release(long address, long bytes) {
                v.addressFree(address, bytes);
            }
        };
    }

    /** Streams are CUstream handles as numbers (0 = the legacy default stream). */
    private static StreamEvents events(Driver cu) {
        return new StreamEvents() {
            final Map<Long, MemorySegment> live = new HashMap<>();
            long next = 1;

            public long record(long stream) {
                VmmAndEvents v = VmmAndEvents.get();
                MemorySegment e = v.eventCreate();
                v.eventRecord(e, MemorySegment.ofAddress(stream));
                live.put(next, e);
                return next++;
            }

            public boolean done(long event) {
                return VmmAndEvents.get().eventDone(live.get(event));
            }

            public void destroy(long event) {
                VmmAndEvents.get().eventDestroy(live.remove(event));
            }

            public void synchronize(long stream) {
                if (stream == 0) cu.synchronize();   // the legacy stream's pool: only allocations made without a session
                else cu.streamSynchronize(MemorySegment.ofAddress(stream));
            }
        };
    }
}
