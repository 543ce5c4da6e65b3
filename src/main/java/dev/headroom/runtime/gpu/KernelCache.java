package dev.headroom.runtime.gpu;

import dev.headroom.cuda.Driver;
import dev.headroom.cuda.Nvrtc;
import dev.headroom.runtime.CacheDir;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * Compiles headroom's CUDA C resources with NVRTC for the device's architecture and keeps the
 * cubin on disk ({@code <cache>/kernels/<sha256>.cubin}), keyed by source, options, architecture,
 * NVRTC and driver version, so a second start loads instead of compiling. A source's line
 * {@code #include "common.cuh"} is replaced by that resource (the storage types and loads and stores
 * every source shares) before it is compiled and hashed: NVRTC gets one source, no include paths.
 */
final class KernelCache {
    private KernelCache() {}

    static final String COMMON = "#include \"common.cuh\"";

    /** Milliseconds each module took to compile, or to read from the cache ("name (cached)"), in this process, for `bench --json`. */
    private static final java.util.Map<String, Double> MILLIS = new java.util.concurrent.ConcurrentSkipListMap<>();

    static java.util.Map<String, Double> millis() {
        return java.util.Map.copyOf(MILLIS);
    }

    static byte[] cubin(String resource, int major, int minor, Driver cu) {
        return cubin(resource, major, minor, cu, new String[0]);
    }

    /** As {@link #cubin(String, int, int, Driver)} with extra NVRTC options ({@code -D} defines: one source, several modules). */
    static byte[] cubin(String resource, int major, int minor, Driver cu, String... extra) {
        long t0 = System.nanoTime();
        String name = resource.substring(resource.lastIndexOf('/') + 1) + (extra.length == 0 ? "" : " " + String.join(" ", extra));
        boolean[] cached = {false};
        byte[] bin = load(resource, major, minor, cu, extra, cached);
        MILLIS.put(name + (cached[0] ? " (cached)" : ""), Math.round((System.nanoTime() - t0) / 1e4) / 100.0);
        return bin;
    }

    private static byte[] load(String resource, int major, int minor, Driver cu, String[] extra, boolean[] cached) {
        String source = source(resource);
        Nvrtc nvrtc = Nvrtc.get();
        String[] options = java.util.stream.Stream.concat(java.util.stream.Stream.of("--gpu-architecture=sm_" + major + minor, "--std=c++17",
                "-default-device"), java.util.Arrays.stream(extra)).toArray(String[]::new);
        String key = CacheDir.sha256(source + "\n" + String.join(" ", options) + "\nnvrtc " + nvrtc.version() + "\ndriver " + cu.version());
        Path file = CacheDir.root().resolve("kernels").resolve(key + ".cubin");
        try {
            if (Files.isRegularFile(file)) {
                byte[] bin = Files.readAllBytes(file);
                cached[0] = true;
                return bin;
            }
        } catch (IOException ignored) {
            // an unreadable cache entry is compiled again
        }
        byte[] bin = nvrtc.compile(source, resource.substring(resource.lastIndexOf('/') + 1), options);
        try {
            Files.createDirectories(file.getParent());
            Path tmp = Files.createTempFile(file.getParent(), ".cubin", ".tmp");
            Files.write(tmp, bin);
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException ignored) {
            // no cache this time; the compiled kernels still work
        }
        return bin;
    }

    /** The resource's text with the shared header put in place of its include line. */
    static String source(String resource) {
        String text = read(resource);
        return text.contains(COMMON) ? text.replace(COMMON, read(resource.substring(0, resource.lastIndexOf('/') + 1) + "common.cuh")) : text;
    }

    private static String read(String resource) {
        try (InputStream in = KernelCache.class.getResourceAsStream(resource)) {
            if (in == null) throw new IllegalStateException("kernel source " + resource + " missing from the build");
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
