package dev.headroom.runtime;

import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashSet;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Temporary files that become outputs by an atomic rename, and are removed whatever happens
 * otherwise. Every writer of an output file uses it the same way:
 * <pre>
 *   Path tmp = TempFiles.create(target);      // ".NAME.headroom-PID-N.tmp" beside the target
 *   try {
 *       ... write tmp ...
 *       TempFiles.commit(tmp, target);        // rename into place
 *   } finally {
 *       TempFiles.discard(tmp);               // no-op after commit
 *   }
 * </pre>
 * A shutdown hook ({@link #installCleanup}) deletes the files still registered when the JVM is
 * stopped by SIGTERM or SIGINT (Ctrl-C); after it has run, {@link #create} refuses, so no new one is
 * left behind by a thread still working. A SIGKILL or a power cut can still leave one: its name
 * carries the writer's process id, and {@link #sweep} removes those whose process is gone (or that
 * are over a day old) when a later run writes into the same folder.
 */
public final class TempFiles {
    private static final Pattern NAME = Pattern.compile("\\.(.*)\\.headroom-(\\d+)-\\d+\\.tmp");
    private static final Duration STALE = Duration.ofDays(1);
    private static final Set<Path> LIVE = new LinkedHashSet<>();
    private static boolean closing;
    private static long counter;
    private static Thread hook;

    private TempFiles() {}

    /** Registers the shutdown hook once per JVM. */
    public static synchronized void installCleanup() {
        if (hook != null) return;
        hook = new Thread(TempFiles::deleteAll, "headroom-temp-cleanup");
        Runtime.getRuntime().addShutdownHook(hook);
    }

    /** True once the shutdown hook has run: writers are refused from then on. */
    public static synchronized boolean closing() {
        return closing;
    }

    /** A new empty temporary file in the target's folder, registered for removal; stale ones there are swept first. */
    public static Path create(Path target) throws IOException {
        Path abs = target.toAbsolutePath();
        Path dir = abs.getParent();
        sweep(dir);
        long n;
        synchronized (TempFiles.class) {
            if (closing) throw new IOException("shutting down; not writing " + target);
            n = ++counter;
        }
        String base = abs.getFileName().toString();
        Matcher own = NAME.matcher(base);
        if (own.matches()) base = own.group(1);   // a temporary file of a temporary file keeps the target's name: ".x.png.headroom-..."
        if (base.length() > 100) base = base.substring(0, 100);
        Path tmp = dir.resolve("." + base + ".headroom-" + ProcessHandle.current().pid() + "-" + n + ".tmp");
        synchronized (TempFiles.class) {
            if (closing) throw new IOException("shutting down; not writing " + target);
            LIVE.add(tmp);
        }
        try {
            Files.createFile(tmp);
        } catch (IOException e) {
            forget(tmp);
            throw e;
        }
        return tmp;
    }

    /** Renames the temporary file onto the target (atomically where the file system can) and unregisters it. */
    public static void commit(Path tmp, Path target) throws IOException {
        synchronized (TempFiles.class) {
            if (closing) throw new IOException("shutting down; " + target + " not written");
        }
        try {
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
        }
        forget(tmp);
    }

    /** Deletes the temporary file if it is still there (a no-op after {@link #commit}). */
    public static void discard(Path tmp) {
        try {
            Files.deleteIfExists(tmp);
        } catch (IOException ignored) {
            // the shutdown hook or a later sweep gets another chance
            return;
        }
        forget(tmp);
    }

    /** Removes temporary files of this naming in {@code dir} whose writer process is gone, or that are over a day old. */
    public static void sweep(Path dir) {
        if (dir == null || !Files.isDirectory(dir)) return;
        long self = ProcessHandle.current().pid();
        try (DirectoryStream<Path> s = Files.newDirectoryStream(dir, ".*.headroom-*.tmp")) {
            for (Path p : s) {
                Matcher m = NAME.matcher(p.getFileName().toString());
                if (!m.matches() || !Files.isRegularFile(p, java.nio.file.LinkOption.NOFOLLOW_LINKS)) continue;
                long pid = Long.parseLong(m.group(2));
                if (pid == self) continue;
                FileTime t = Files.getLastModifiedTime(p);
                boolean gone = ProcessHandle.of(pid).map(ph -> !ph.isAlive()).orElse(true);
                if (gone || t.toInstant().isBefore(Instant.now().minus(STALE))) Files.deleteIfExists(p);
            }
        } catch (IOException | NumberFormatException | SecurityException ignored) {
            // sweeping is best effort: an unreadable folder fails the real write with a clear message
        }
    }

    private static synchronized void forget(Path tmp) {
        LIVE.remove(tmp);
    }

    private static void deleteAll() {
        Set<Path> left;
        synchronized (TempFiles.class) {
            closing = true;
            left = new LinkedHashSet<>(LIVE);
            LIVE.clear();
        }
        for (Path p : left) {
            try {
                Files.deleteIfExists(p);
            } catch (IOException ignored) {
                // nothing more can be done while the JVM exits
            }
        }
    }
}
