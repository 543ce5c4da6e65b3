package dev.headroom.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * NVML (libnvidia-ml): what the whole device looks like, including memory other processes hold,
 * without creating a CUDA context. Used by {@code headroom devices} and by out-of-memory reports.
 */
public final class Nvml {
    private static final Once<Nvml> INSTANCE = new Once<>(Nvml::new);

    private final NativeLibraries.Library lib;
    private final MethodHandle getHandle, getName, getMemory, driverVersion, errorString, processes;

    /** A process with a compute context on the device, and the device memory it uses. */
    public record Process(long pid, long usedBytes) {}

    /** Bytes on one device: total, free and used, as the driver counts them (all processes). */
    public record Memory(long total, long free, long used) {}

    private Nvml() {
        lib = NativeLibraries.load("NVML (libnvidia-ml)", "HEADROOM_NVML", "libnvidia-ml.so.1", "libnvidia-ml.so");
        MethodHandle init = lib.function("nvmlInit_v2", FunctionDescriptor.of(JAVA_INT));
        getHandle = lib.function("nvmlDeviceGetHandleByIndex_v2", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
        getName = lib.function("nvmlDeviceGetName", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
        getMemory = lib.function("nvmlDeviceGetMemoryInfo", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        driverVersion = lib.function("nvmlSystemGetDriverVersion", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        errorString = lib.function("nvmlErrorString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        processes = lib.function("nvmlDeviceGetComputeRunningProcesses_v3", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
        check(Driver.call(() -> (int) init.invokeExact()), "nvmlInit_v2");
    }

    public static Nvml get() {
        return INSTANCE.get();
    }

    public String driverVersion() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(96);
            check(Driver.call(() -> (int) driverVersion.invokeExact(s, 96)), "nvmlSystemGetDriverVersion");
            return s.getString(0);
        }
    }

    public Memory memory(int index) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment h = handle(a, index);
            MemorySegment m = a.allocate(JAVA_LONG, 3);   // nvmlMemory_t: total, free, used (unsigned long long)
            check(Driver.call(() -> (int) getMemory.invokeExact(h, m)), "nvmlDeviceGetMemoryInfo");
            return new Memory(m.getAtIndex(JAVA_LONG, 0), m.getAtIndex(JAVA_LONG, 1), m.getAtIndex(JAVA_LONG, 2));
        }
    }

    public String name(int index) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment h = handle(a, index);
            MemorySegment s = a.allocate(96);
            check(Driver.call(() -> (int) getName.invokeExact(h, s, 96)), "nvmlDeviceGetName");
            return s.getString(0);
        }
    }

    /**
     * Processes with a compute context on device {@code index}. nvmlProcessInfo_t (v2/v3 layout):
     * pid (uint, then 4 bytes of padding), usedGpuMemory (u64), gpuInstanceId, computeInstanceId: 24 bytes.
     */
    public java.util.List<Process> processes(int index) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment h = handle(a, index);
            for (int room = 16; ; room *= 4) {
                MemorySegment count = a.allocate(JAVA_INT);
                count.set(JAVA_INT, 0, room);
                MemorySegment infos = a.allocate(24L * room, 8);
                int st = Driver.call(() -> (int) processes.invokeExact(h, count, infos));
                if (st == 7 && room < 4096) continue;   // NVML_ERROR_INSUFFICIENT_SIZE: more processes than room
                check(st, "nvmlDeviceGetComputeRunningProcesses_v3");
                java.util.List<Process> out = new java.util.ArrayList<>();
                for (int i = 0; i < count.get(JAVA_INT, 0); i++) {
                    out.add(new Process(Integer.toUnsignedLong(infos.get(JAVA_INT, 24L * i)), infos.get(JAVA_LONG, 24L * i + 8)));
                }
                return out;
            }
        }
    }

    private MemorySegment handle(Arena a, int index) {
        MemorySegment h = a.allocate(ADDRESS);
        check(Driver.call(() -> (int) getHandle.invokeExact(index, h)), "nvmlDeviceGetHandleByIndex_v2");
        return h.get(ADDRESS, 0);
    }

    private void check(int status, String fn) {
        if (status == 0) return;
        throw new CudaException("libnvidia-ml", fn, status, NativeLibraries.statusName(errorString, status, "NVML_ERROR_"), null);
    }
}
