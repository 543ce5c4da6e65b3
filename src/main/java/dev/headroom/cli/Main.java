package dev.headroom.cli;

import dev.headroom.models.ModelFormatException;
import dev.headroom.models.NpmPackage;
import dev.headroom.models.image.ImageFiles;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code headroom} command. Errors reach the user as one line, {@code headroom: what went
 * wrong}, with exit status 2 for bad input (a file, an option), 3 when the device ran out of memory
 * after every rung of the degrade ladder, and 1 for anything else; the stack trace only with
 * {@code --verbose}.
 */
@Command(name = "headroom", mixinStandardHelpOptions = true, version = "headroom 0.1.0",
        description = "Runs large image models without running out of memory.",
        subcommands = {UpscaleCommand.class, ServeCommand.class, SubmitCommand.class, JobsCommand.class, ModelsCommand.class, BenchCommand.class, DiagnoseCommand.class, DevicesCommand.class, MemoryReportCommand.class, MemoryBenchCommand.class, PlanCommand.class, DecodeCommand.class, EncodeCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {

    /** Bad input the user can fix: exit status 2. */
    public static final class UsageError extends RuntimeException {
        public UsageError(String msg) {
            super(msg);
        }
    }

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.err);
    }

    public static void main(String[] args) {
        System.setProperty("java.awt.headless", "true");
        System.exit(run(args));
    }

    public static int run(String... args) {
        CommandLine cl = new CommandLine(new Main());
        cl.setExecutionExceptionHandler((ex, line, parsed) -> {
            boolean verbose = parsed.originalArgs().contains("--verbose") || parsed.originalArgs().contains("-v");
            if (verbose) ex.printStackTrace(System.err);
            String msg = ex.getMessage() == null ? ex.getClass().getSimpleName() : ex.getMessage();
            boolean known = userError(ex) || ex instanceof dev.headroom.runtime.memory.DeviceOutOfMemory;
            line.getErr().println("headroom: " + msg.lines().findFirst().orElse(msg) + (verbose || known ? "" : " (--verbose shows where)"));
            return userError(ex) ? 2 : ex instanceof dev.headroom.runtime.memory.DeviceOutOfMemory ? 3 : 1;
        });
        cl.setParameterExceptionHandler((ex, a) -> {
            ex.getCommandLine().getErr().println("headroom: " + ex.getMessage());
            ex.getCommandLine().getErr().println("Try '" + ex.getCommandLine().getCommandSpec().qualifiedName() + " --help'.");
            return 2;
        });
        try {
            return cl.execute(args);
        } catch (OutOfMemoryError e) {
            System.err.println("headroom: out of host memory (" + e.getMessage() + "); use a smaller --tile, or give Java more with HEADROOM_JAVA_OPTS=-Xmx...");
            return 1;
        }
    }

    static boolean userError(Throwable ex) {
        return ex instanceof UsageError || ex instanceof ModelFormatException || ex instanceof ImageFiles.BadImage
                || ex instanceof NpmPackage.Unavailable || ex instanceof IllegalArgumentException;
    }
}
