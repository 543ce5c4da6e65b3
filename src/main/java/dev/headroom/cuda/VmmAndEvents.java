package dev.headroom.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * The driver's virtual-memory management (cuMemAddressReserve, cuMemCreate, cuMemMap,
 * cuMemSetAccess, cuMemUnmap, cuMemRelease, cuMemAddressFree) and events (cuEventCreate,
 * cuEventRecord, cuEventQuery, cuEventDestroy), the primitives of expandable segments and of
 * stream-aware reuse. Calls need the device's context to be current.
 */
public final class VmmAndEvents {
    private static final Once<VmmAndEvents> INSTANCE = new Once<>(VmmAndEvents::new);
    private static final int CU_MEM_ALLOCATION_TYPE_PINNED = 1, CU_MEM_LOCATION_TYPE_DEVICE = 1, CU_MEM_ACCESS_FLAGS_PROT_READWRITE = 3;
    private static final int CUDA_ERROR_NOT_READY = 600, CU_EVENT_DISABLE_TIMING = 2;

    private final Driver cu = Driver.get();
    private final MethodHandle reserve, addressFree, create, release, map, unmap, setAccess, granularity,
            eventCreate, eventRecord, eventQuery, eventSynchronize, eventDestroy, streamWaitEvent;

    private VmmAndEvents() {
        NativeLibraries.Library lib = NativeLibraries.load("the CUDA driver (libcuda)", "HEADROOM_LIBCUDA", "libcuda.so.1", "libcuda.so");
        reserve = lib.function("cuMemAddressReserve", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG));
        addressFree = lib.function("cuMemAddressFree", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG));
        create = lib.function("cuMemCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, ADDRESS, JAVA_LONG));
        release = lib.function("cuMemRelease", FunctionDescriptor.of(JAVA_INT, JAVA_LONG));
        map = lib.function("cuMemMap", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG));
        unmap = lib.function("cuMemUnmap", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG));
        setAccess = lib.function("cuMemSetAccess", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, ADDRESS, JAVA_LONG));
        granularity = lib.function("cuMemGetAllocationGranularity", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
        eventCreate = lib.function("cuEventCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        eventRecord = lib.function("cuEventRecord", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        eventQuery = lib.function("cuEventQuery", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        eventSynchronize = lib.function("cuEventSynchronize", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        eventDestroy = lib.function("cuEventDestroy_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        streamWaitEvent = lib.function("cuStreamWaitEvent", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
    }

    public static VmmAndEvents get() {
        return INSTANCE.get();
    }

    /**
     * CUmemAllocationProp for pinned device memory on {@code device}: type (int), requested handle
     * types (int), location {type, id} (two ints), win32 metadata (pointer), allocFlags (8 bytes).
     */
    private static MemorySegment deviceProp(Arena a, int device) {
        MemorySegment p = a.allocate(32, 8);
        p.set(JAVA_INT, 0, CU_MEM_ALLOCATION_TYPE_PINNED);
        p.set(JAVA_INT, 8, CU_MEM_LOCATION_TYPE_DEVICE);
        p.set(JAVA_INT, 12, device);
        return p;
    }

    /** The minimum mapping granularity for device memory on {@code device} (2 MiB on current GPUs). */
    public long granularity(int device) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment g = a.allocate(JAVA_LONG);
            MemorySegment p = deviceProp(a, device);
            cu.check(Driver.call(() -> (int) granularity.invokeExact(g, p, 0)), "cuMemGetAllocationGranularity");
            return g.get(JAVA_LONG, 0);
        }
    }

    public long reserve(long bytes, long alignment) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment ptr = a.allocate(JAVA_LONG);
            cu.check(Driver.call(() -> (int) reserve.invokeExact(ptr, bytes, alignment, 0L, 0L)), "cuMemAddressReserve", bytes + " bytes");
            return ptr.get(JAVA_LONG, 0);
        }
    }

    public void addressFree(long address, long bytes) {
        cu.check(Driver.call(() -> (int) addressFree.invokeExact(address, bytes)), "cuMemAddressFree");
    }

    /**
     * Creates {@code bytes} of physical memory on {@code device}, maps it at {@code address} with
     * read-write access for the device, and returns the handle; 0 when the device is out of memory.
     */
    public long createAndMap(int device, long address, long bytes) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment h = a.allocate(JAVA_LONG);
            MemorySegment prop = deviceProp(a, device);
            int st = Driver.call(() -> (int) create.invokeExact(h, bytes, prop, 0L));
            if (st == 2) return 0;   // CUDA_ERROR_OUT_OF_MEMORY
            cu.check(st, "cuMemCreate", bytes + " bytes");
            long handle = h.get(JAVA_LONG, 0);
            try {
                cu.check(Driver.call(() -> (int) map.invokeExact(address, bytes, 0L, handle, 0L)), "cuMemMap");
                MemorySegment access = a.allocate(12, 4);
                access.set(JAVA_INT, 0, CU_MEM_LOCATION_TYPE_DEVICE);
                access.set(JAVA_INT, 4, device);
                access.set(JAVA_INT, 8, CU_MEM_ACCESS_FLAGS_PROT_READWRITE);
                cu.check(Driver.call(() -> (int) setAccess.invokeExact(address, bytes, access, 1L)), "cuMemSetAccess");
            } catch (CudaException e) {
                Driver.call(() -> (int) release.invokeExact(handle));
                throw e;
            }
            return handle;
        }
    }

    /** Unmaps [address, address + bytes), which one {@link #createAndMap} mapped, and frees its physical memory. */
    public void unmapAndRelease(long address, long bytes, long handle) {
        cu.check(Driver.call(() -> (int) unmap.invokeExact(address, bytes)), "cuMemUnmap");
        cu.check(Driver.call(() -> (int) release.invokeExact(handle)), "cuMemRelease");
    }

    public MemorySegment eventCreate() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment e = a.allocate(ADDRESS);
            cu.check(Driver.call(() -> (int) eventCreate.invokeExact(e, CU_EVENT_DISABLE_TIMING)), "cuEventCreate");
            return e.get(ADDRESS, 0);
        }
    }

    public void eventRecord(MemorySegment event, MemorySegment stream) {
        cu.check(Driver.call(() -> (int) eventRecord.invokeExact(event, stream)), "cuEventRecord");
    }

    /** Whether the event has completed; never blocks. */
    public boolean eventDone(MemorySegment event) {
        int st = Driver.call(() -> (int) eventQuery.invokeExact(event));
        if (st == CUDA_ERROR_NOT_READY) return false;
        cu.check(st, "cuEventQuery");
        return true;
    }

    /** Blocks until the work before the event's last record has completed. */
    public void eventSynchronize(MemorySegment event) {
        cu.check(Driver.call(() -> (int) eventSynchronize.invokeExact(event)), "cuEventSynchronize");
    }

    /**
     * Makes work issued later on {@code stream} wait, on the device, until the work before the
     * event's last record (at the time of this call) is done; the host does not wait. An event
     * never recorded is no wait at all.
     */
    public void streamWaitEvent(MemorySegment stream, MemorySegment event) {
        cu.check(Driver.call(() -> (int) streamWaitEvent.invokeExact(stream, event, 0)), "cuStreamWaitEvent");
    }

    public void eventDestroy(MemorySegment event) {
        cu.check(Driver.call(() -> (int) eventDestroy.invokeExact(event)), "cuEventDestroy_v2");
    }
}
