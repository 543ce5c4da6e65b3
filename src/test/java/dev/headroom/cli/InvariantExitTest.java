package dev.headroom.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.quant.Compact;
import dev.headroom.core.residency.ResidencyPolicy;
import dev.headroom.models.ModelFormatException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * Through the real command line (picocli's execution handler and {@link Main}'s exit path): an
 * internal invariant that fails inside a command, an IllegalArgumentException from headroom's own
 * code included, exits 1 and asks for a bug report; it is never reported as bad input (2). Bad
 * input still exits 2. The failures come from real code called with broken invariants.
 */
class InvariantExitTest {
    @CommandLine.Command(name = "fail")
    static final class Fail implements Callable<Integer> {
        @CommandLine.Parameters
        String how;

        @Override
        public Integer call() {
            switch (how) {
                case "argument" -> Compact.int8(new float[5], 2);                  // IllegalArgumentException: 5 values are not rows of 2 channels
                case "state" -> new ResidencyPolicy(0).release("never-acquired");  // IllegalStateException: not known to the residency manager
                case "null" -> ((String) null).length();
                case "usage" -> throw new Main.UsageError("--tile 3 is too small; use at least 8");
                case "model" -> throw new ModelFormatException(Path.of("m.safetensors"), "header is not JSON");
                default -> { }
            }
            return 0;
        }
    }

    private static String[] run(String how) {
        CommandLine cl = new CommandLine(new Main()).addSubcommand("fail", new Fail());
        StringWriter err = new StringWriter();
        cl.setErr(new PrintWriter(err, true));
        int status = Main.run(cl, "fail", how);
        return new String[] {String.valueOf(status), err.toString()};
    }

    @Test
    void invariantFailuresAreBugsNotBadInput() {
        for (String how : new String[] {"argument", "state", "null"}) {
            String[] r = run(how);
            assertEquals("1", r[0], how + " reported as " + (r[0].equals("2") ? "bad input" : "status " + r[0]) + ": " + r[1]);
            assertTrue(r[1].contains("this is a bug in headroom") && r[1].lines().count() == 1, r[1]);
        }
        assertTrue(run("argument")[1].contains("IllegalArgumentException: 5 values are not rows of 2 channels"), run("argument")[1]);
    }

    @Test
    void badInputIsStillStatusTwo() {
        for (String how : new String[] {"usage", "model"}) {
            String[] r = run(how);
            assertEquals("2", r[0], how + ": " + r[1]);
            assertTrue(!r[1].contains("bug") && r[1].lines().count() == 1, r[1]);
        }
        assertEquals("0", run("nothing")[0]);
    }
}
