package dev.headroom.cli;

import dev.headroom.core.Sizes;
import dev.headroom.runtime.TempFiles;
import dev.headroom.runtime.memory.MemoryReport;
import java.io.IOException;
import java.io.Writer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * Renders a --memory-trace file as a timeline of device memory by category, with the peak, every
 * rung of the degrade ladder and every model load, eviction and reload marked: an HTML page or a PNG, by the output's extension. The drawing
 * is {@link MemoryReport}'s, which {@code headroom serve} uses for each job's report too.
 */
@Command(name = "memory-report", mixinStandardHelpOptions = true,
        description = "Draws a memory trace (from --memory-trace) as a timeline: HTML or PNG, by the output's extension.")
final class MemoryReportCommand implements Callable<Integer> {
    @Parameters(paramLabel = "TRACE", description = "A trace written by --memory-trace")
    Path input;

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "OUT", description = "report.html or report.png")
    Path output;

    @Override
    public Integer call() throws IOException {
        String problem = dev.headroom.models.InputFiles.problem(input);
        if (problem != null) throw new Main.UsageError(input + ": " + problem);
        if (Outputs.same(input, output)) throw new Main.UsageError("-o " + output + " is the trace being read; give another file name");
        String name = output.getFileName().toString().toLowerCase(Locale.ROOT);
        boolean png = name.endsWith(".png");
        if (!png && !name.endsWith(".html") && !name.endsWith(".htm")) throw new Main.UsageError("-o " + output + ": give a .html or .png file");
        MemoryReport.Timeline t;
        try {
            t = MemoryReport.read(input);
        } catch (IllegalArgumentException e) {
            throw new Main.UsageError(e.getMessage());
        } catch (java.nio.charset.CharacterCodingException e) {
            throw new Main.UsageError(input + " is not a memory trace: it is not UTF-8 text (was it written by --memory-trace?)");
        }
        if (t.points().isEmpty()) throw new Main.UsageError(input + " has no allocation events; was it written by --memory-trace?");
        Path dir = output.toAbsolutePath().getParent();
        if (dir == null || !Files.isDirectory(dir)) throw new Main.UsageError("cannot write " + output + ": folder " + dir + " does not exist");
        if (Files.isDirectory(output)) throw new Main.UsageError("-o " + output + " is a folder; give a .html or .png file name");
        Path tmp = TempFiles.create(output);
        try {
            if (png) javax.imageio.ImageIO.write(MemoryReport.png(t), "png", tmp.toFile());
            else try (Writer w = Files.newBufferedWriter(tmp)) {
                w.write(MemoryReport.html(t));
            }
            TempFiles.commit(tmp, output);
        } finally {
            TempFiles.discard(tmp);
        }
        MemoryReport.Point peak = t.points().get(t.peakIndex());
        String models = t.models().isEmpty() ? "" : String.format(", model weights loaded %d, evicted %d, reloaded %d times",
                t.models().stream().filter(m -> m.kind().equals("load")).count(), t.models().stream().filter(m -> m.kind().equals("evict")).count(),
                t.models().stream().filter(m -> m.kind().equals("reload")).count());
        System.err.printf("%s: %d events, peak %s allocated at %.3f s, %d rungs%s; wrote %s%n", input, t.events(), Sizes.format(peak.total() - peak.bytes()[3]),
                peak.seconds(), t.markers().size(), models, output);
        return 0;
    }

}
