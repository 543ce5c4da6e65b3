package dev.headroom.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * Finds CUDA's shared libraries by their standard names: first an explicit path from an
 * environment variable (e.g. {@code HEADROOM_CUDNN=/opt/cudnn/lib/libcudnn.so.9}), then the
 * dynamic loader's own search (ld.so.cache, LD_LIBRARY_PATH), then the usual install folders
 * ($CUDA_HOME, /usr/local/cuda*, the toolkit's targets/x86_64-linux/lib). Libraries stay loaded
 * for the life of the process.
 */
public final class NativeLibraries {
    private NativeLibraries() {}

    static final Linker LINKER = Linker.nativeLinker();

    /** A loaded library and where it came from. */
    public record Library(String name, String path, SymbolLookup lookup) {
        MethodHandle function(String symbol, FunctionDescriptor fd) {
            MemorySegment addr = lookup.find(symbol).orElseThrow(() -> new CudaUnavailable(
                    name + " at " + path + " has no function " + symbol + "; it is too old for headroom (update the driver or library)"));
            return LINKER.downcallHandle(addr, fd);
        }

        boolean has(String symbol) {
            return lookup.find(symbol).isPresent();
        }
    }

    static Library load(String what, String envVar, String... names) {
        String explicit = System.getenv(envVar);
        List<String> tried = new ArrayList<>();
        if (explicit != null && !explicit.isBlank()) {
            try {
                return new Library(what, explicit, SymbolLookup.libraryLookup(Path.of(explicit), Arena.global()));
            } catch (IllegalArgumentException e) {
                throw new CudaUnavailable(envVar + "=" + explicit + " cannot be loaded as " + what + ": " + e.getMessage());
            }
        }
        for (String n : names) {
            try {
                return new Library(what, n, SymbolLookup.libraryLookup(n, Arena.global()));
            } catch (IllegalArgumentException e) {
                tried.add(n);
            }
        }
        for (Path dir : folders()) {
            for (String n : names) {
                Path p = dir.resolve(n);
                if (Files.isRegularFile(p)) {
                    try {
                        return new Library(what, p.toString(), SymbolLookup.libraryLookup(p, Arena.global()));
                    } catch (IllegalArgumentException e) {
                        tried.add(p + " (" + e.getMessage() + ")");
                    }
                }
            }
        }
        throw new CudaUnavailable(what + " not found (looked for " + String.join(", ", names) + " through the dynamic loader and in "
                + folders().size() + " CUDA folders); install it or set " + envVar + " to its path");
    }

    /** The name a library's error-string function gives a status, or PREFIX + number if that call fails. */
    static String statusName(MethodHandle errorString, int status, String prefix) {
        try {
            return ((MemorySegment) errorString.invokeExact(status)).reinterpret(256).getString(0);
        } catch (Throwable t) {
            return prefix + status;
        }
    }

    static List<Path> folders() {
        List<Path> dirs = new ArrayList<>();
        String home = System.getenv("CUDA_HOME");
        if (home != null) {
            dirs.add(Path.of(home, "lib64"));
            dirs.add(Path.of(home, "targets", "x86_64-linux", "lib"));
        }
        Path local = Path.of("/usr/local");
        if (Files.isDirectory(local)) {
            try (Stream<Path> s = Files.list(local)) {
                s.filter(p -> p.getFileName().toString().startsWith("cuda")).sorted(java.util.Comparator.reverseOrder()).forEach(p -> {
                    dirs.add(p.resolve("lib64"));
                    dirs.add(p.resolve("targets/x86_64-linux/lib"));
                });
            } catch (java.io.IOException ignored) {
                // an unreadable /usr/local only means fewer places to look
            }
        }
        dirs.add(Path.of("/usr/lib/x86_64-linux-gnu"));
        dirs.add(Path.of("/usr/lib64"));
        dirs.add(Path.of("/usr/lib/wsl/lib"));
        return dirs;
    }
}
