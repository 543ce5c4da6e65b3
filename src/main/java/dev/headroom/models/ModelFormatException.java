package dev.headroom.models;

import java.nio.file.Path;

/** A model file that cannot be used: the message names the file and what did not match. */
public final class ModelFormatException extends RuntimeException {
    public ModelFormatException(Path file, String what) {
        super(file.getFileName() + ": " + what);
    }

    public ModelFormatException(Path file, String what, Throwable cause) {
        super(file.getFileName() + ": " + what, cause);
    }
}
