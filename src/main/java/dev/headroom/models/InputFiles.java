package dev.headroom.models;

import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;

/**
 * Says, before anything opens it, why a path given as an input file cannot be read as one: a
 * folder, a device, a FIFO or a socket (opening a FIFO would wait forever for a writer, a device
 * may never end), a broken link, or nothing at all. Null means it is a regular file.
 */
public final class InputFiles {
    private InputFiles() {}

    public static String problem(Path p) {
        if (Files.isRegularFile(p)) return Files.isReadable(p) ? null : "is not readable (check its permissions)";
        if (Files.isDirectory(p)) return "is a folder, not a file";
        if (Files.exists(p)) return "is not a regular file (a device, FIFO or socket); give a file";
        if (Files.exists(p, LinkOption.NOFOLLOW_LINKS)) return "is a link to a file that does not exist";
        return "no such file";
    }
}
