package dev.headroom.cli;

import java.io.FileOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/**
 * The launcher starts Java with its own stderr sent to /dev/null (that is where the JVM's
 * "WARNING: Using incubator modules" line goes, which no option silences) and the user's stderr
 * kept open as another descriptor, named by {@code -Dheadroom.stderr=/dev/fd/N}. Here, before
 * anything is printed, System.err is pointed at it: headroom's own output reaches the user byte for
 * byte, with no filter between (a filter turned a message holding a NUL into "binary file matches").
 */
final class LauncherStderr {
    private LauncherStderr() {}

    static void install() {
        String path = System.getProperty("headroom.stderr");
        if (path == null || path.isEmpty()) return;
        try {
            System.setErr(new PrintStream(new FileOutputStream(path, true), true, StandardCharsets.UTF_8));
        } catch (IOException | SecurityException e) {
            System.err.println("headroom: cannot open " + path + " for messages (" + e.getMessage() + ")");
        }
    }
}
