package dev.headroom.cli;

import dev.headroom.runtime.TempFiles;
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
        dev.headroom.runtime.Startup.mark("main");
        System.setProperty("java.awt.headless", "true");
        LauncherStderr.install();
        TempFiles.installCleanup();
        System.exit(run(args));
    }

    public static int run(String... args) {
        return run(new CommandLine(new Main()), args);
    }

    /** Runs {@code args} on {@code cl} through the one exit path ({@link Failures}); tests give it a command line with a command of their own. */
    static int run(CommandLine cl, String... args) {
        boolean verbose = java.util.Arrays.asList(args).contains("--verbose") || java.util.Arrays.asList(args).contains("-v");
        String command = Failures.command(java.util.Arrays.asList(args));
        cl.setExecutionExceptionHandler((ex, line, parsed) -> Failures.report(ex, verbose, command, line.getErr()));
        cl.setParameterExceptionHandler((ex, a) -> {
            ex.getCommandLine().getErr().println("headroom: " + Failures.oneLine(ex.getMessage())
                    + " (see '" + ex.getCommandLine().getCommandSpec().qualifiedName() + " --help')");
            return Failures.BAD_INPUT;
        });
        try {
            return cl.execute(args);
        } catch (Throwable e) {
            // Errors (StackOverflowError, OutOfMemoryError, ...) pass picocli's handler; they end here, as one line too
            return Failures.report(e, verbose, command, new java.io.PrintWriter(System.err, true));
        }
    }
}
