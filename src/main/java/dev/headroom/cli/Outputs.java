package dev.headroom.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** Checks that outputs are safe to write: never over an input, never two outputs on one file, never onto a device. */
final class Outputs {
    private Outputs() {}

    /** Whether two paths name the same file: the same inode where both exist (links included), else the same normalised path. */
    static boolean same(Path a, Path b) {
        if (a == null || b == null) return false;
        try {
            if (Files.exists(a) && Files.exists(b)) return Files.isSameFile(a, b);
        } catch (IOException e) {
            // fall through to comparing names
        }
        return key(a).equals(key(b));
    }

    private static Path key(Path p) {
        Path abs = p.toAbsolutePath().normalize();
        try {
            Path dir = abs.getParent();
            if (dir != null && Files.isDirectory(dir)) return dir.toRealPath().resolve(abs.getFileName());
        } catch (IOException e) {
            // keep the plain absolute path
        }
        return abs;
    }

    /** Refuses an output that is an existing folder, device or FIFO, or that is one of the {@code inputs} (what, then path). */
    static void requireWritable(String option, Path out, List<Path> inputs) {
        if (out.toString().equals("-")) {
            throw new Main.UsageError(option + " -: writing to standard output is not supported; give a file name");
        }
        if (Files.isDirectory(out)) throw new Main.UsageError(option + " " + out + " is a folder; give a file name");
        if (Files.exists(out) && !Files.isRegularFile(out)) {
            throw new Main.UsageError(option + " " + out + " is not a regular file (a device, FIFO or socket); give a file name");
        }
        for (Path in : inputs) {
            if (same(in, out)) throw new Main.UsageError(option + " " + out + " is also an input (" + in + "); writing it would destroy the input: give another name");
        }
    }

    /** Refuses two inputs whose outputs would land on the same file (in folder mode, a/x.png and b/x.png). */
    static void requireDistinct(Map<Path, Path> outputByInput) {
        Map<Path, Path> seen = new HashMap<>();
        for (var e : outputByInput.entrySet()) {
            Path k = key(e.getValue());
            Path other = seen.putIfAbsent(k, e.getKey());
            if (other != null) {
                throw new Main.UsageError(other + " and " + e.getKey() + " would both be written to " + e.getValue()
                        + "; upscale them into separate folders, or rename one");
            }
        }
    }
}
