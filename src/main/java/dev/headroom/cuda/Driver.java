package dev.headroom.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * The CUDA driver API (libcuda), the calls headroom needs: devices, primary contexts, memory,
 * streams, modules and launches. Every status is checked; a failure is a {@link CudaException}
 * naming the function and the status (cuGetErrorName). Handles (contexts, streams, modules,
 * functions) are opaque {@link MemorySegment} addresses; device pointers are {@code long}.
 */
public final class Driver {
    public static final int CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
    public static final int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
    public static final int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
    /** CUDA 12.0: cuLaunchKernel and friends as headroom uses them. */
    public static final int MIN_DRIVER = 12000;

    private static final Once<Driver> INSTANCE = new Once<>(Driver::new);

    private final NativeLibraries.Library lib;
    private final MethodHandle cuInit, cuDriverGetVersion, cuDeviceGetCount, cuDeviceGet, cuDeviceGetName, cuDeviceTotalMem,
            cuDeviceGetAttribute, cuDevicePrimaryCtxRetain, cuDevicePrimaryCtxRelease, cuCtxSetCurrent, cuCtxSynchronize,
            cuMemAlloc, cuMemFree, cuMemAllocHost, cuMemFreeHost, cuMemcpyHtoD, cuMemcpyDtoH, cuMemcpyHtoDAsync, cuMemcpyDtoHAsync, cuMemcpyDtoD, cuMemsetD8, cuMemGetInfo, cuStreamCreate,
            cuStreamSynchronize, cuStreamDestroy, cuModuleLoadData, cuModuleGetFunction, cuModuleUnload, cuLaunchKernel, cuGetErrorName;
    private final int version;

    private Driver() {
        lib = NativeLibraries.load("the CUDA driver (libcuda)", "HEADROOM_LIBCUDA", "libcuda.so.1", "libcuda.so");
        FunctionDescriptor i_i = FunctionDescriptor.of(JAVA_INT, JAVA_INT);
        FunctionDescriptor i_p = FunctionDescriptor.of(JAVA_INT, ADDRESS);
        cuInit = lib.function("cuInit", i_i);
        cuDriverGetVersion = lib.function("cuDriverGetVersion", i_p);
        cuDeviceGetCount = lib.function("cuDeviceGetCount", i_p);
        cuDeviceGet = lib.function("cuDeviceGet", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        cuDeviceGetName = lib.function("cuDeviceGetName", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
        cuDeviceTotalMem = lib.function("cuDeviceTotalMem_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        cuDeviceGetAttribute = lib.function("cuDeviceGetAttribute", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
        cuDevicePrimaryCtxRetain = lib.function("cuDevicePrimaryCtxRetain", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        cuDevicePrimaryCtxRelease = lib.function("cuDevicePrimaryCtxRelease_v2", i_i);
        cuCtxSetCurrent = lib.function("cuCtxSetCurrent", i_p);
        cuCtxSynchronize = lib.function("cuCtxSynchronize", FunctionDescriptor.of(JAVA_INT));
        cuMemAlloc = lib.function("cuMemAlloc_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
        cuMemFree = lib.function("cuMemFree_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG));
        cuMemAllocHost = lib.function("cuMemAllocHost_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
        cuMemFreeHost = lib.function("cuMemFreeHost", i_p);
        cuMemcpyHtoD = lib.function("cuMemcpyHtoD_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS, JAVA_LONG));
        cuMemcpyDtoH = lib.function("cuMemcpyDtoH_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG));
        cuMemcpyHtoDAsync = lib.function("cuMemcpyHtoDAsync_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS));
        cuMemcpyDtoHAsync = lib.function("cuMemcpyDtoHAsync_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS));
        cuMemcpyDtoD = lib.function("cuMemcpyDtoD_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG));
        cuMemsetD8 = lib.function("cuMemsetD8_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_LONG));
        cuMemGetInfo = lib.function("cuMemGetInfo_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        cuStreamCreate = lib.function("cuStreamCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        cuStreamSynchronize = lib.function("cuStreamSynchronize", i_p);
        cuStreamDestroy = lib.function("cuStreamDestroy_v2", i_p);
        cuModuleLoadData = lib.function("cuModuleLoadData", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        cuModuleGetFunction = lib.function("cuModuleGetFunction", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
        cuModuleUnload = lib.function("cuModuleUnload", i_p);
        cuLaunchKernel = lib.function("cuLaunchKernel", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT,
                JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
        cuGetErrorName = lib.function("cuGetErrorName", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
        int init = call(() -> (int) cuInit.invokeExact(0));
        if (init == 100) throw new CudaUnavailable("the CUDA driver is installed but sees no GPU (CUDA_ERROR_NO_DEVICE)");
        check(init, "cuInit");
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_INT);
            check(call(() -> (int) cuDriverGetVersion.invokeExact(v)), "cuDriverGetVersion");
            version = v.get(JAVA_INT, 0);
        }
        if (version < MIN_DRIVER) {
            throw new CudaUnavailable("the CUDA driver supports CUDA " + version / 1000 + "." + version % 1000 / 10
                    + "; headroom needs " + MIN_DRIVER / 1000 + ".0 or newer: update the NVIDIA driver");
        }
    }

    /** The process's driver, initialised on first use. */
    public static Driver get() {
        return INSTANCE.get();
    }

    public String libraryPath() {
        return lib.path();
    }

    /** e.g. 13000 for CUDA 13.0. */
    public int version() {
        return version;
    }

    public int deviceCount() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment n = a.allocate(JAVA_INT);
            check(call(() -> (int) cuDeviceGetCount.invokeExact(n)), "cuDeviceGetCount");
            return n.get(JAVA_INT, 0);
        }
    }

    public int device(int ordinal) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment d = a.allocate(JAVA_INT);
            check(call(() -> (int) cuDeviceGet.invokeExact(d, ordinal)), "cuDeviceGet");
            return d.get(JAVA_INT, 0);
        }
    }

    public String deviceName(int dev) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(256);
            check(call(() -> (int) cuDeviceGetName.invokeExact(s, 256, dev)), "cuDeviceGetName");
            return s.getString(0);
        }
    }

    public long totalMemory(int dev) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(JAVA_LONG);
            check(call(() -> (int) cuDeviceTotalMem.invokeExact(s, dev)), "cuDeviceTotalMem_v2");
            return s.get(JAVA_LONG, 0);
        }
    }

    public int attribute(int attr, int dev) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(JAVA_INT);
            check(call(() -> (int) cuDeviceGetAttribute.invokeExact(s, attr, dev)), "cuDeviceGetAttribute");
            return s.get(JAVA_INT, 0);
        }
    }

    /** Retains the device's primary context and makes it current on this thread. */
    public MemorySegment retainPrimaryContext(int dev) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(ADDRESS);
            check(call(() -> (int) cuDevicePrimaryCtxRetain.invokeExact(s, dev)), "cuDevicePrimaryCtxRetain");
            MemorySegment ctx = s.get(ADDRESS, 0);
            setCurrent(ctx);
            return ctx;
        }
    }

    public void releasePrimaryContext(int dev) {
        check(call(() -> (int) cuDevicePrimaryCtxRelease.invokeExact(dev)), "cuDevicePrimaryCtxRelease_v2");
    }

    public void setCurrent(MemorySegment ctx) {
        check(call(() -> (int) cuCtxSetCurrent.invokeExact(ctx)), "cuCtxSetCurrent");
    }

    public void synchronize() {
        check(call(() -> (int) cuCtxSynchronize.invokeExact()), "cuCtxSynchronize");
    }

    /** Raw device allocation; only allocators call this. */
    public long memAlloc(long bytes) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(JAVA_LONG);
            check(call(() -> (int) cuMemAlloc.invokeExact(p, bytes)), "cuMemAlloc_v2", "requested " + bytes + " bytes");
            return p.get(JAVA_LONG, 0);
        }
    }

    public void memFree(long ptr) {
        check(call(() -> (int) cuMemFree.invokeExact(ptr)), "cuMemFree_v2");
    }

    /**
     * Page-locked host memory of {@code bytes}: copies to and from it run at the bus's full rate
     * (pageable memory is first copied by the driver into a pinned bounce buffer). Free with
     * {@link #memFreeHost}.
     */
    public MemorySegment memAllocHost(long bytes) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDRESS);
            check(call(() -> (int) cuMemAllocHost.invokeExact(p, bytes)), "cuMemAllocHost_v2", "requested " + bytes + " bytes of pinned host memory");
            return p.get(ADDRESS, 0).reinterpret(bytes);
        }
    }

    public void memFreeHost(MemorySegment p) {
        check(call(() -> (int) cuMemFreeHost.invokeExact(p)), "cuMemFreeHost");
    }

    public void copyHtoD(long dst, MemorySegment src, long bytes) {
        check(call(() -> (int) cuMemcpyHtoD.invokeExact(dst, src, bytes)), "cuMemcpyHtoD_v2");
    }

    public void copyDtoH(MemorySegment dst, long src, long bytes) {
        check(call(() -> (int) cuMemcpyDtoH.invokeExact(dst, src, bytes)), "cuMemcpyDtoH_v2");
    }

    /** Queues a copy from pinned host memory on {@code stream}; {@code src} must stay untouched until the stream reaches it. */
    public void copyHtoDAsync(long dst, MemorySegment src, long bytes, MemorySegment stream) {
        check(call(() -> (int) cuMemcpyHtoDAsync.invokeExact(dst, src, bytes, stream)), "cuMemcpyHtoDAsync_v2");
    }

    /** Queues a copy into pinned host memory on {@code stream}; {@code dst} holds the data once the stream has passed it. */
    public void copyDtoHAsync(MemorySegment dst, long src, long bytes, MemorySegment stream) {
        check(call(() -> (int) cuMemcpyDtoHAsync.invokeExact(dst, src, bytes, stream)), "cuMemcpyDtoHAsync_v2");
    }

    public void copyDtoD(long dst, long src, long bytes) {
        check(call(() -> (int) cuMemcpyDtoD.invokeExact(dst, src, bytes)), "cuMemcpyDtoD_v2");
    }

    public void memset(long dst, int value, long bytes) {
        check(call(() -> (int) cuMemsetD8.invokeExact(dst, value, bytes)), "cuMemsetD8_v2");
    }

    /** {free, total} bytes of the current context's device. */
    public long[] memInfo() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment f = a.allocate(JAVA_LONG), t = a.allocate(JAVA_LONG);
            check(call(() -> (int) cuMemGetInfo.invokeExact(f, t)), "cuMemGetInfo_v2");
            return new long[] {f.get(JAVA_LONG, 0), t.get(JAVA_LONG, 0)};
        }
    }

    /**
     * A new stream. Ordered with the legacy default stream (flags 0): headroom's synchronous
     * copies, which run there, then wait for the stream's work and its later work waits for them.
     */
    public MemorySegment streamCreate() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(ADDRESS);
            check(call(() -> (int) cuStreamCreate.invokeExact(s, 0)), "cuStreamCreate");
            return s.get(ADDRESS, 0);
        }
    }

    /**
     * A new stream not ordered with the legacy default stream (CU_STREAM_NON_BLOCKING): one
     * session's stream never waits for another's through it. Nothing may then rely on synchronous
     * copies, which run on the legacy stream, to see its work.
     */
    public MemorySegment streamCreateNonBlocking() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(ADDRESS);
            check(call(() -> (int) cuStreamCreate.invokeExact(s, 1)), "cuStreamCreate");
            return s.get(ADDRESS, 0);
        }
    }

    public void streamSynchronize(MemorySegment stream) {
        check(call(() -> (int) cuStreamSynchronize.invokeExact(stream)), "cuStreamSynchronize");
    }

    public void streamDestroy(MemorySegment stream) {
        check(call(() -> (int) cuStreamDestroy.invokeExact(stream)), "cuStreamDestroy_v2");
    }

    public MemorySegment moduleLoad(byte[] image) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment img = a.allocate(image.length + 1L);
            MemorySegment.copy(image, 0, img, java.lang.foreign.ValueLayout.JAVA_BYTE, 0, image.length);
            MemorySegment m = a.allocate(ADDRESS);
            check(call(() -> (int) cuModuleLoadData.invokeExact(m, img)), "cuModuleLoadData");
            return m.get(ADDRESS, 0);
        }
    }

    public MemorySegment function(MemorySegment module, String name) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment f = a.allocate(ADDRESS);
            MemorySegment n = a.allocateFrom(name);
            check(call(() -> (int) cuModuleGetFunction.invokeExact(f, module, n)), "cuModuleGetFunction", name);
            return f.get(ADDRESS, 0);
        }
    }

    public void moduleUnload(MemorySegment module) {
        check(call(() -> (int) cuModuleUnload.invokeExact(module)), "cuModuleUnload");
    }

    /** cuLaunchKernel; {@code params} is the void*[] of argument addresses. */
    public void launch(MemorySegment fn, int gx, int gy, int gz, int bx, int by, int bz, int shared, MemorySegment stream, MemorySegment params) {
        check(call(() -> (int) cuLaunchKernel.invokeExact(fn, gx, gy, gz, bx, by, bz, shared, stream, params, MemorySegment.NULL)), "cuLaunchKernel");
    }

    public String errorName(int status) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(ADDRESS);
            int r = call(() -> (int) cuGetErrorName.invokeExact(status, s));
            if (r != 0) return "CUDA_ERROR_" + status;
            return s.get(ADDRESS, 0).reinterpret(256).getString(0);
        }
    }

    void check(int status, String fn) {
        check(status, fn, null);
    }

    void check(int status, String fn, String detail) {
        if (status != 0) throw new CudaException("libcuda", fn, status, errorName(status), detail);
    }

    /** A native call that returns a status; MethodHandle.invokeExact declares Throwable. */
    interface NativeCall {
        int run() throws Throwable;
    }

    static int call(NativeCall c) {
        try {
            return c.run();
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }
}
