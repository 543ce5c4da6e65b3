package dev.headroom.models.image;

import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * An output written under a temporary name beside its target and renamed into place only when
 * complete ({@link #commit}); {@link #close} without a commit deletes it, so a failed or
 * interrupted job leaves no partial file at the target. Every image writer gets its temporary
 * file here ({@link #create}), the one place that names them: {@code .<target name>.<random>.tmp}.
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
        return new OutputFile(t, Files.createTempFile(t.getParent(), "." + t.getFileName(), SUFFIX));
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
        try {
            Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(temp, target, StandardCopyOption.REPLACE_EXISTING);
        }
        committed = true;
    }

    /** Deletes the temporary file unless it was committed. */
    @Override
    public void close() throws IOException {
        if (!committed) Files.deleteIfExists(temp);
    }
}
