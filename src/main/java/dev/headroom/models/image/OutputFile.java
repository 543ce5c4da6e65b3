package dev.headroom.models.image;

import dev.headroom.runtime.TempFiles;
import java.io.IOException;
import java.nio.file.Path;

/**
 * An output written under a temporary name beside its target and renamed into place only when
 * complete ({@link #commit}); {@link #close} without a commit deletes it, so a failed or
 * interrupted job leaves no partial file at the target. Every image writer gets its temporary
 * file here ({@link #create}); the names and the clean-up on SIGTERM/SIGINT are {@link TempFiles}'.
 */
public final class OutputFile implements AutoCloseable {
    /** What every temporary output file's name ends with. */
    public static final String SUFFIX = ".tmp";

    private final Path target;
    private final Path temp;
    private boolean committed;

    private OutputFile(Path target, Path temp) {
        this.target = target;
        this.temp = temp;
    }

    /** A new empty temporary file beside {@code target}. */
    public static OutputFile create(Path target) throws IOException {
        Path t = target.toAbsolutePath();
        return new OutputFile(t, TempFiles.create(t));
    }

    /** The temporary file, to write to. */
    public Path temp() {
        return temp;
    }

    public Path target() {
        return target;
    }

    /** Renames the finished temporary file onto the target (atomically where the file system can). */
    public void commit() throws IOException {
        TempFiles.commit(temp, target);
        committed = true;
    }

    /** Deletes the temporary file unless it was committed. */
    @Override
    public void close() throws IOException {
        if (!committed) TempFiles.discard(temp);
    }
}
