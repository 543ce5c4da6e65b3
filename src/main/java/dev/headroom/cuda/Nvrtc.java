package dev.headroom.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;

/** NVRTC: CUDA C to a cubin for one architecture, at run time. Compile errors carry NVRTC's log. */
public final class Nvrtc {
    private static final Once<Nvrtc> INSTANCE = new Once<>(Nvrtc::new);

    private final NativeLibraries.Library lib;
    private final MethodHandle create, compile, logSize, log, cubinSize, cubin, destroy, version, errorString;

    private Nvrtc() {
        lib = NativeLibraries.load("NVRTC (libnvrtc)", "HEADROOM_NVRTC", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so");
        preloadBuiltins(Path.of(lib.path()));
        create = lib.function("nvrtcCreateProgram", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS));
        compile = lib.function("nvrtcCompileProgram", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS));
        logSize = lib.function("nvrtcGetProgramLogSize", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        log = lib.function("nvrtcGetProgramLog", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        cubinSize = lib.function("nvrtcGetCUBINSize", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        cubin = lib.function("nvrtcGetCUBIN", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        destroy = lib.function("nvrtcDestroyProgram", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        version = lib.function("nvrtcVersion", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        errorString = lib.function("nvrtcGetErrorString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
    }

    /** libnvrtc loads its builtins by name; when the toolkit is not on the loader's path, load them from beside it first. */
    private static void preloadBuiltins(Path nvrtc) {
        Path dir = nvrtc.getParent();
        if (dir == null || !Files.isDirectory(dir)) return;
        try (var s = Files.list(dir)) {
            s.filter(p -> p.getFileName().toString().startsWith("libnvrtc-builtins.so")).sorted().findFirst().ifPresent(p -> {
                try {
                    java.lang.foreign.SymbolLookup.libraryLookup(p, Arena.global());
                } catch (IllegalArgumentException ignored) {
                    // NVRTC will report the missing builtins itself if it needs them
                }
            });
        } catch (java.io.IOException ignored) {
            // as above
        }
    }

    public static Nvrtc get() {
        return INSTANCE.get();
    }

    public String libraryPath() {
        return lib.path();
    }

    /** "13.0". */
    public String version() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment ma = a.allocate(JAVA_INT), mi = a.allocate(JAVA_INT);
            check(Driver.call(() -> (int) version.invokeExact(ma, mi)), "nvrtcVersion", null);
            return ma.get(JAVA_INT, 0) + "." + mi.get(JAVA_INT, 0);
        }
    }

    /** Compiles {@code source} to a cubin with the given options (e.g. --gpu-architecture=sm_90). */
    public byte[] compile(String source, String name, String... options) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment prog = a.allocate(ADDRESS);
            MemorySegment src = a.allocateFrom(source), nm = a.allocateFrom(name);
            check(Driver.call(() -> (int) create.invokeExact(prog, src, nm, 0, MemorySegment.NULL, MemorySegment.NULL)), "nvrtcCreateProgram", null);
            MemorySegment p = prog.get(ADDRESS, 0);
            try {
                MemorySegment opts = a.allocate(ADDRESS, options.length);
                for (int i = 0; i < options.length; i++) opts.setAtIndex(ADDRESS, i, a.allocateFrom(options[i]));
                int r = Driver.call(() -> (int) compile.invokeExact(p, options.length, opts));
                if (r != 0) check(r, "nvrtcCompileProgram", programLog(a, p));
                MemorySegment size = a.allocate(JAVA_LONG);
                check(Driver.call(() -> (int) cubinSize.invokeExact(p, size)), "nvrtcGetCUBINSize", null);
                MemorySegment out = a.allocate(size.get(JAVA_LONG, 0));
                check(Driver.call(() -> (int) cubin.invokeExact(p, out)), "nvrtcGetCUBIN", null);
                return out.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
            } finally {
                Driver.call(() -> (int) destroy.invokeExact(prog));
            }
        }
    }

    private String programLog(Arena a, MemorySegment p) {
        MemorySegment size = a.allocate(JAVA_LONG);
        if (Driver.call(() -> (int) logSize.invokeExact(p, size)) != 0) return "";
        MemorySegment text = a.allocate(Math.max(1, size.get(JAVA_LONG, 0)));
        if (Driver.call(() -> (int) log.invokeExact(p, text)) != 0) return "";
        return text.getString(0).strip();
    }

    private void check(int status, String fn, String detail) {
        if (status == 0) return;
        throw new CudaException("libnvrtc", fn, status, NativeLibraries.statusName(errorString, status, "NVRTC_ERROR_"), detail);
    }
}
