package dev.headroom.cli;

import dev.headroom.core.diagnose.Diagnosis;
import dev.headroom.core.diagnose.Incident;
import dev.headroom.core.diagnose.LogScanner;
import dev.headroom.core.diagnose.OomNumbers;
import dev.headroom.core.Sizes;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "diagnose", mixinStandardHelpOptions = true,
        description = {"Explains the memory failures in a crashed GPU job's log (ComfyUI, webui, Forge, Fooocus, InvokeAI, diffusers, kohya, ...) "
                + "and says what to change.", "Reads FILE, or standard input with '-' or no FILE. Exit status: 0 read (whatever it found), 2 bad input."})
final class DiagnoseCommand implements Callable<Integer> {

    @Parameters(paramLabel = "FILE|-", arity = "0..1", description = "The log; '-' or nothing reads standard input")
    String file;

    @Option(names = "--gpu-memory", paramLabel = "SIZE", description = "The card's memory (e.g. 12GiB), used when the log does not state it")
    String gpuMemory;

    @picocli.CommandLine.Mixin
    OutputOptions output;


    @Override
    public Integer call() throws IOException {
        Long card = null;
        if (gpuMemory != null) {
            try {
                card = Sizes.parseOption(gpuMemory);
            } catch (IllegalArgumentException e) {
                throw new Main.UsageError("--gpu-memory: " + e.getMessage());
            }
        }
        LogScanner scanner = new LogScanner(card);
        if (file == null || file.equals("-")) {
            LineStream.forEach(System.in, scanner::line);
        } else {
            Path p = Path.of(file);
            String problem = dev.headroom.models.InputFiles.problem(p);
            if (problem != null) throw new Main.UsageError(file + ": " + problem + " (to read a pipe, give '-' and redirect it)");
            try (InputStream in = new BufferedInputStream(Files.newInputStream(p), 1 << 16)) {
                LineStream.forEach(in, scanner::line);
            }
        }
        Diagnosis d = scanner.finish();
        if (output.json) {
            OutputOptions.printJson(toJson(d));
        } else {
            System.out.print(toText(d));
        }
        return 0;
    }

    static String toText(Diagnosis d) {
        StringBuilder sb = new StringBuilder();
        if (d.clean()) {
            sb.append("No memory error found in ").append(d.lines()).append(" lines.\n");
            if (d.lastError() != null) sb.append("The last error the log shows (line ").append(d.lastErrorLine()).append("): ").append(d.lastError()).append('\n');
            return sb.toString();
        }
        sb.append(d.incidents().size()).append(d.incidents().size() == 1 ? " incident" : " incidents").append(" in ").append(d.lines()).append(" lines")
                .append(d.incidentsDropped() > 0 ? " (" + d.incidentsDropped() + " more not listed)" : "").append(".\n");
        int i = 1;
        for (Incident inc : d.incidents()) {
            sb.append("\n").append(i++).append(". Line ").append(inc.line()).append(inc.times() > 1 ? " (seen " + inc.times() + " times)" : "")
                    .append(": ").append(inc.kind().title).append("\n");
            sb.append("   ").append(shorten(inc.message(), 240)).append("\n");
            sb.append(wrap(inc.explanation(), "   ")).append("\n");
            String facts = facts(inc);
            if (!facts.isEmpty()) sb.append("   Job: ").append(facts).append("\n");
            sb.append("   What to change, most effective first:\n");
            int k = 1;
            for (Incident.Recommendation r : inc.recommendations()) {
                sb.append(wrap(k++ + ") " + r.action() + " \u2014 " + r.why(), "     ")).append("\n");
            }
        }
        return sb.toString();
    }

    private static String facts(Incident inc) {
        List<String> f = new ArrayList<>();
        if (inc.job().tool() != null) f.add(inc.job().tool());
        if (inc.job().stage() != null) f.add(inc.job().stage());
        if (inc.job().model() != null) f.add("model " + inc.job().model());
        if (inc.job().resolution() != null) f.add(inc.job().resolution());
        if (inc.job().batch() != null) f.add("batch " + inc.job().batch());
        if (inc.numbers().gpu() != null) f.add("GPU " + inc.numbers().gpu());
        return String.join(", ", f);
    }

    static Map<String, Object> toJson(Diagnosis d) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("lines", d.lines());
        out.put("memory_error_found", !d.clean());
        List<Map<String, Object>> list = new ArrayList<>();
        for (Incident inc : d.incidents()) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("line", inc.line());
            m.put("times", inc.times());
            m.put("class", inc.kind().slug());
            m.put("title", inc.kind().title);
            m.put("device", inc.device());
            m.put("message", shorten(inc.message(), 2000));
            m.put("numbers", numbers(inc.numbers()));
            Map<String, Object> job = new LinkedHashMap<>();
            job.put("tool", inc.job().tool());
            job.put("stage", inc.job().stage());
            job.put("model", inc.job().model());
            job.put("width", inc.job().width());
            job.put("height", inc.job().height());
            job.put("batch_size", inc.job().batch());
            m.put("job", job);
            m.put("explanation", inc.explanation());
            List<Map<String, Object>> recs = new ArrayList<>();
            int rank = 1;
            for (Incident.Recommendation r : inc.recommendations()) {
                Map<String, Object> rm = new LinkedHashMap<>();
                rm.put("rank", rank++);
                rm.put("action", r.action());
                rm.put("why", r.why());
                recs.add(rm);
            }
            m.put("recommendations", recs);
            list.add(m);
        }
        out.put("incidents", list);
        out.put("incidents_not_listed", d.incidentsDropped());
        if (d.clean() && d.lastError() != null) {
            out.put("last_error", d.lastError());
            out.put("last_error_line", d.lastErrorLine());
        }
        return out;
    }

    private static Map<String, Object> numbers(OomNumbers n) {
        Map<String, Object> m = new LinkedHashMap<>();
        put(m, "gpu", n.gpu());
        put(m, "requested_bytes", n.requested());
        put(m, "total_bytes", n.total());
        put(m, "free_bytes", n.free());
        put(m, "allocated_bytes", n.allocated());
        put(m, "reserved_bytes", n.reserved());
        put(m, "reserved_unallocated_bytes", n.reservedUnallocated());
        put(m, "this_process_bytes", n.thisProcess());
        put(m, "held_outside_pytorch_bytes", n.heldOutsidePyTorch());
        if (!n.processes().isEmpty()) {
            List<Map<String, Object>> ps = new ArrayList<>();
            for (OomNumbers.ProcessUse p : n.processes()) ps.add(Map.of("pid", p.pid(), "bytes", p.bytes()));
            m.put("processes", ps);
        }
        put(m, "mps_allocated_bytes", n.mpsAllocated());
        put(m, "mps_other_bytes", n.mpsOther());
        put(m, "mps_max_allowed_bytes", n.mpsMaxAllowed());
        return m;
    }

    private static void put(Map<String, Object> m, String k, Object v) {
        if (v != null) m.put(k, v);
    }

    private static String shorten(String s, int max) {
        return s.length() <= max ? s : s.substring(0, max) + "...";
    }

    private static String wrap(String text, String indent) {
        StringBuilder out = new StringBuilder(indent);
        int col = indent.length();
        for (String w : text.split(" ")) {
            if (col + w.length() > 100 && col > indent.length()) {
                out.append('\n').append(indent).append(indent.length() > 3 ? "   " : "");   // recommendations hang under their text
                col = indent.length();
            }
            out.append(w).append(' ');
            col += w.length() + 1;
        }
        return out.toString().stripTrailing();
    }
}
