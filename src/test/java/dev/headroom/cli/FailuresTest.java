package dev.headroom.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.models.ModelFormatException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The one exit path: every Throwable is one line and a status; bugs ask for a report, bad input says what to change. */
class FailuresTest {
    static String[] report(Throwable t, boolean verbose, String command) {
        StringWriter w = new StringWriter();
        int status = Failures.report(t, verbose, command, new PrintWriter(w));
        return new String[] {String.valueOf(status), w.toString()};
    }

    @Test
    void badInputIsStatusTwoAndOneLine() {
        String[] r = report(new ModelFormatException(Path.of("m.pth"), "tensor 'x' reaches element 9\nof a storage of 3"), false, "upscale");
        assertEquals("2", r[0]);
        assertEquals(1, r[1].lines().count(), r[1]);
        assertTrue(r[1].startsWith("headroom: m.pth: tensor 'x' reaches element 9 ..."), r[1]);
    }

    @Test
    void internalFailuresAreBugsNotBadInput() {
        for (Throwable t : List.of(new NullPointerException("Cannot invoke x"), new IllegalStateException("arena overlap"),
                new IllegalArgumentException("shape mismatch"), new StackOverflowError(), new ArrayIndexOutOfBoundsException(-1))) {
            String[] r = report(t, false, "upscale");
            assertEquals("1", r[0], t.toString());
            assertEquals(1, r[1].lines().count(), r[1]);
            assertTrue(r[1].contains("please report") && r[1].contains("--verbose") && r[1].contains(t.getClass().getSimpleName()), r[1]);
        }
    }

    @Test
    void verbosePrintsTheTraceFirst() {
        String[] r = report(new IllegalStateException("boom"), true, "bench");
        assertTrue(r[1].lines().count() > 2, r[1]);
        assertTrue(r[1].lines().toList().getLast().startsWith("headroom: internal error (IllegalStateException: boom)"), r[1]);
    }

    @Test
    void hostMemoryAdviceFitsTheCommand() {
        String up = report(new OutOfMemoryError("Java heap space"), false, "upscale")[1];
        String inspect = report(new OutOfMemoryError("Java heap space"), false, "models")[1];
        String bench = report(new OutOfMemoryError("Java heap space"), false, "bench")[1];
        assertEquals("3", report(new OutOfMemoryError(), false, "upscale")[0]);
        assertTrue(up.contains("does not help") && up.contains("-Xmx"), up);
        assertFalse(inspect.contains("--tile"), inspect);
        assertTrue(bench.contains("smaller --tile"), bench);
    }

    @Test
    void controlCharactersAreEscaped() {
        String line = Failures.oneLine("layer 'a\u0000b\u001b[31m' has class X");
        assertEquals("layer 'a\\u0000b\\u001b[31m' has class X", line);
        assertEquals("NegativeArraySizeException -2015", Failures.describe(new NegativeArraySizeException("-2015")));
    }
}
