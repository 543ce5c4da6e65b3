package dev.headroom.cli;

import dev.headroom.models.ModelFormatException;
import dev.headroom.models.NpmPackage;
import dev.headroom.models.image.ImageFiles;
import dev.headroom.runtime.memory.DeviceOutOfMemory;
import java.io.PrintWriter;
import java.nio.file.InvalidPathException;
import java.util.List;

/**
 * The one exit path for every {@link Throwable}: one line on stderr and an exit status. 2 is bad
 * input the user can change (the line says what), 3 is out of memory (device, after every rung of
 * the degrade ladder, or the Java heap), 1 is a bug in headroom: an internal invariant failed, and
 * the line asks for a report with {@code --verbose}. Messages are cut to their first line and
 * control characters are escaped, so a NUL or an escape sequence from a hostile file reaches the
 * terminal as text.
 */
final class Failures {
    static final int BAD_INPUT = 2, OUT_OF_MEMORY = 3, BUG = 1;
    private static final int MAX_LINE = 600;

    private Failures() {}

    /** Prints the line (and with {@code verbose} the stack trace first) and returns the exit status. */
    static int report(Throwable t, boolean verbose, String command, PrintWriter err) {
        if (verbose) t.printStackTrace(err);
        int status = status(t);
        err.println("headroom: " + line(t, status, verbose, command));
        err.flush();
        return status;
    }

    static int status(Throwable t) {
        if (badInput(t)) return BAD_INPUT;
        if (t instanceof DeviceOutOfMemory || t instanceof OutOfMemoryError) return OUT_OF_MEMORY;
        return BUG;
    }

    static boolean badInput(Throwable t) {
        return t instanceof Main.UsageError || t instanceof ModelFormatException || t instanceof ImageFiles.BadImage
                || t instanceof NpmPackage.Unavailable || t instanceof InvalidPathException;
    }

    static String line(Throwable t, int status, boolean verbose, String command) {
        if (t instanceof OutOfMemoryError) return oneLine("out of host memory (Java heap): " + hostMemoryAdvice(command));
        if (t instanceof InvalidPathException p) {
            return oneLine("file name '" + p.getInput() + "' cannot be used here (" + p.getReason()
                    + "); rename the file, or run with a UTF-8 locale (LANG=C.UTF-8)");
        }
        if (t instanceof DeviceOutOfMemory && !"upscale".equals(command) && !"bench".equals(command)) {
            // the ladder's advice names --tile, which only upscale and bench have
            return oneLine(describe(t).replace("Use a smaller --tile, a larger --vram-budget", "Use a smaller input, a larger --vram-budget"));
        }
        if (status != BUG) return oneLine(describe(t));
        return oneLine("internal error (" + t.getClass().getSimpleName() + (t.getMessage() == null ? "" : ": " + t.getMessage())
                + "); this is a bug in headroom, please report it" + (verbose ? " with the trace above" : " with the output of --verbose"));
    }

    /** What to change when the heap ran out: only options the command has. */
    static String hostMemoryAdvice(String command) {
        String more = "give Java more with HEADROOM_JAVA_OPTS=-Xmx<size> (e.g. -Xmx16g)";
        return switch (command == null ? "" : command) {
            case "upscale" -> "the whole input and output image are held in host memory, so a smaller --tile does not help; "
                    + more + ", or upscale a smaller image";
            case "bench" -> "use a smaller --tile or --batch, or " + more;
            case "diagnose" -> more;
            default -> more + ", or use a smaller input";
        };
    }

    /** The message, or the exception's kind where the message alone says nothing (a bare number or null). */
    static String describe(Throwable t) {
        String m = t.getMessage();
        if (m == null || m.isBlank()) return t.getClass().getSimpleName();
        return m.codePoints().anyMatch(Character::isLetter) ? m : t.getClass().getSimpleName() + " " + m;
    }

    /** The first line, control characters escaped, cut to a readable length. */
    static String oneLine(String s) {
        String first = s.lines().findFirst().orElse("");
        StringBuilder b = new StringBuilder();
        first.codePoints().forEach(c -> {
            if (c < 0x20 && c != '\t' || c == 0x7f || (c >= 0x80 && c < 0xa0)) b.append(String.format("\\u%04x", c));
            else b.appendCodePoint(c);
        });
        if (s.lines().skip(1).findAny().isPresent()) b.append(" ...");
        return b.length() > MAX_LINE ? b.substring(0, MAX_LINE) + " ..." : b.toString();
    }

    /** The subcommand the arguments name (for advice), or null. */
    static String command(List<String> args) {
        for (String a : args) {
            if (!a.startsWith("-")) return a;
        }
        return null;
    }
}
