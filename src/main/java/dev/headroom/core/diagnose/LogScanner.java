package dev.headroom.core.diagnose;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Reads a log line by line and finds its incidents. It holds only the current job context, the
 * incidents found (at most {@link #MAX_INCIDENTS} distinct ones) and a message being continued on
 * following lines, so a log of any size is read in bounded memory.
 *
 * <p>Detection is by phrase, checked on the lower-cased line before any regular expression runs.
 * An out-of-memory message may continue on the next few lines (consoles wrap it); those lines are
 * joined to it before its numbers are read. The same message seen again (a traceback printed twice,
 * a retried job) counts as one incident seen several times.
 */
public final class LogScanner {
    public static final int MAX_INCIDENTS = 500;
    private static final int MAX_MESSAGE = 1500;
    private static final int CONTINUATION_LINES = 6;
    private static final Pattern CONTINUES = Pattern.compile(
            "(?i)(capacity|already allocated|reserved|memory in use|is free|free;|unallocated|max allowed|PYTORCH_|Currently allocated|Requested\\s*:|Device limit|according to CUDA|PyTorch limit|^\\s*:\\s*[0-9])");
    private static final Pattern PREFIX = Pattern.compile("^.*?(?=(?:torch\\.)?(?:cuda\\.)?OutOfMemoryError|RuntimeError|CUDA out of|HIP out of|XPU out of|MPS backend|CUDA error|Could not allocate|Allocation on device)");
    private static final Pattern PY_ERROR = Pattern.compile("^\\s*(?:[A-Za-z_][\\w.]*(?:Error|Exception|Exit)|Error)(?::| occurred)\\s?.*");

    private static final int SAME_REPORT_LINES = 40;

    /** An incident before its job context is final: the tool is the log's, and a stage printed just after it counts. */
    private static final class Draft {
        final int line;
        final IncidentKind kind;
        final String device, message;
        final OomNumbers numbers;
        JobContext.Snapshot job;
        int times = 1;

        Draft(int line, IncidentKind kind, String device, String message, OomNumbers numbers, JobContext.Snapshot job) {
            this.line = line;
            this.kind = kind;
            this.device = device;
            this.message = message;
            this.numbers = numbers;
            this.job = job;
        }
    }

    private final JobContext context = new JobContext();
    private final List<Draft> incidents = new ArrayList<>();
    private final Map<IncidentKind, Long> lastSeenLine = new java.util.EnumMap<>(IncidentKind.class);
    private final Map<String, Integer> seen = new HashMap<>();
    private final Long gpuMemory;
    private int dropped;
    private long lines;
    private String lastError;
    private long lastErrorLine;

    private StringBuilder pending;
    private IncidentKind pendingKind;
    private String pendingDevice;
    private int pendingLine, pendingLeft;

    /** @param gpuMemory the card's memory in bytes when the user knows it and the log may not say; null if unknown */
    public LogScanner(Long gpuMemory) {
        this.gpuMemory = gpuMemory;
    }

    public void line(String raw) {
        lines++;
        String line = LogText.clean(raw);
        if (line.isBlank()) return;
        String lower = line.toLowerCase(Locale.ROOT);
        Object[] hit = detect(lower);
        if (pending != null) {
            if (hit == null && pendingLeft-- > 0 && CONTINUES.matcher(line).find() && pending.length() < MAX_MESSAGE) {
                pending.append(' ').append(line.strip());
                return;
            }
            flush();
        }
        String stageBefore = context.stage();
        context.observe(line, lower);
        if (context.stage() != null && !context.stage().equals(stageBefore)) fillStage(context.stage());
        if (hit != null) {
            pending = new StringBuilder(PREFIX.matcher(line.strip()).replaceFirst(""));
            pendingKind = (IncidentKind) hit[0];
            pendingDevice = (String) hit[1];
            pendingLine = (int) Math.min(lines, Integer.MAX_VALUE);
            pendingLeft = CONTINUATION_LINES;
        } else if ((line.contains("Error") || line.contains("Exception") || line.contains("Exit")) && PY_ERROR.matcher(line).matches()) {
            lastError = line.strip().length() > 300 ? line.strip().substring(0, 300) + "..." : line.strip();
            lastErrorLine = lines;
        }
    }

    /** {kind, device} for a line that starts an incident; OOM kinds are refined by their numbers later. */
    static Object[] detect(String l) {
        if (l.contains("out of memory") || l.contains("outofmemory") || l.contains("out_of_memory") || l.contains("memoryallocation")) {
            if (l.contains("mps backend out of memory")) return new Object[] {IncidentKind.MPS_OOM, "mps"};
            if (l.contains("hip out of memory") || l.contains("hiperroroutofmemory") || l.contains("hip error: out of memory")) return new Object[] {IncidentKind.OOM_CAPACITY, "hip"};
            if (l.contains("xpu out of memory")) return new Object[] {IncidentKind.OOM_CAPACITY, "xpu"};
            if (l.contains("out_of_device_memory")) return new Object[] {IncidentKind.OOM_CAPACITY, "xpu"};
            if (l.contains("cuda out of memory") || l.contains("cuda error: out of memory") || l.contains("cudaerrormemoryallocation")
                    || l.contains("cuda_error_out_of_memory") || l.contains("outofmemoryerror") || l.contains("would exceed allowed memory")
                    || l.contains("cudamalloc failed")) return new Object[] {IncidentKind.OOM_CAPACITY, "cuda"};
        }
        if (l.contains("oom when allocating tensor") || l.contains("failed to allocate memory for requested buffer")) {
            return new Object[] {IncidentKind.OOM_CAPACITY, "cuda"};
        }
        if (l.contains("mps") && l.contains("invalid buffer size")) return new Object[] {IncidentKind.MPS_OOM, "mps"};
        // bash's word for a process the kernel killed; in these tools' logs that is the Linux OOM killer
        if (l.equals("killed") || l.startsWith("killed ") && l.contains("python")) return new Object[] {IncidentKind.HOST_OOM, "cpu"};
        if (l.contains("defaultcpuallocator") || l.contains("_arraymemoryerror") || l.contains("paging file is too small")
                || l.contains("winerror 1455") || l.contains("std::bad_alloc") || l.matches("^\\s*memoryerror\\b.*")) {
            return new Object[] {IncidentKind.HOST_OOM, "cpu"};
        }
        if (l.contains("illegal memory access") || l.contains("errorillegaladdress") || l.contains("error_illegal_address")) {
            return new Object[] {IncidentKind.ILLEGAL_MEMORY_ACCESS, l.contains("hip") ? "hip" : "cuda"};
        }
        if (l.contains("cublas_status_alloc_failed") || l.contains("cublas_status_not_initialized") || l.contains("cudnn_status_alloc_failed")
                || l.contains("cudnn_status_not_initialized") || l.contains("cudnn_status_internal_error") || l.contains("cudnn_status_execution_failed")
                || l.contains("unable to find a valid cudnn algorithm") || l.contains("no valid convolution algorithms available")
                || l.contains("cublas_status_execution_failed") || l.contains("cudnn_status_mapping_error")) {
            return new Object[] {IncidentKind.CUBLAS_CUDNN_FAILURE, "cuda"};
        }
        if (l.contains("3221225477") || l.contains("0xc0000005") || l.contains("-1073741819") || l.contains("access violation")) {
            return new Object[] {IncidentKind.WINDOWS_ACCESS_VIOLATION, "cpu"};
        }
        if (l.contains("not enough gpu video memory") || l.contains("could not allocate tensor with")) {
            return new Object[] {IncidentKind.DIRECTML_OOM, "directml"};
        }
        if (l.contains("device-side assert triggered") || l.contains("illegal instruction was encountered") || l.contains("misaligned address")
                || l.contains("unspecified launch failure") || l.contains("no kernel image is available") || l.contains("cuda driver version is insufficient")) {
            return new Object[] {IncidentKind.OTHER_GPU_ERROR, "cuda"};
        }
        return null;
    }

    private void flush() {
        String message = pending.toString();
        IncidentKind kind = pendingKind;
        pending = null;
        OomNumbers numbers = MessageParser.parse(message);
        // one failure is often reported by several lines (a crash banner, then "Windows fatal exception"; an error, then
        // a hint naming the error code): a line of the same kind with no numbers of its own soon after is part of it
        Long last = lastSeenLine.put(pendingKind, (long) pendingLine);
        if (!numbers.any() && last != null && pendingLine - last <= SAME_REPORT_LINES) return;
        if (kind == IncidentKind.OOM_CAPACITY) kind = classifyGpuOom(numbers);
        String key = kind + "|" + (numbers.any() ? numbers.toString() : message.toLowerCase(Locale.ROOT).replaceAll("\\s+", " "));
        Integer at = seen.get(key);
        if (at != null) {
            incidents.get(at).times++;
            return;
        }
        if (incidents.size() >= MAX_INCIDENTS) {
            dropped++;
            return;
        }
        seen.put(key, incidents.size());
        incidents.add(new Draft(pendingLine, kind, pendingDevice, message, numbers, context.snapshot()));
    }

    /** A stage named within a few lines after an incident (its traceback) is the incident's stage. */
    private void fillStage(String now) {
        for (int i = incidents.size() - 1; i >= 0; i--) {
            Draft d = incidents.get(i);
            if (lines - d.line > SAME_REPORT_LINES) break;
            if (d.job.stage() == null) {
                d.job = new JobContext.Snapshot(d.job.tool(), now, d.job.model(), d.job.width(), d.job.height(), d.job.batch());
            }
        }
    }

    /**
     * Why a GPU ran out, from its numbers:
     * <ol>
     *   <li>if what PyTorch held plus the request exceeds the card, it simply does not fit: capacity;</li>
     *   <li>if memory held outside this job's allocator is a large share of the card and the job alone would
     *       have fit: other process (other processes named exactly: 10% and 512 MiB; memory outside PyTorch
     *       in general, which includes this process's CUDA context: 20% and 1.5 GiB);</li>
     *   <li>if PyTorch's reserved-but-unallocated memory could have held the request: fragmentation;</li>
     *   <li>otherwise capacity.</li>
     * </ol>
     * Without numbers ("CUDA error: out of memory") it is capacity.
     */
    static IncidentKind classifyGpuOom(OomNumbers n) {
        Long total = n.total(), req = n.requested();
        long held = n.allocated() != null ? n.allocated() : n.reserved() != null ? n.reserved() : 0;
        if (total != null && req != null && held + req > total) return IncidentKind.OOM_CAPACITY;
        // "this process has X in use" makes other processes exact; without it, what PyTorch does not hold includes this
        // process's own CUDA context and libraries (up to about 1 GiB), so the bar is higher
        boolean exact = n.otherProcesses() != null;
        Long outside = exact ? n.otherProcesses() : n.heldOutsidePyTorch();
        Long unalloc = n.reservedUnallocated();
        boolean otherBig = outside != null && total != null
                && (exact ? outside >= 0.10 * total && outside >= (512L << 20) : outside >= 0.20 * total && outside >= (3L << 29));
        boolean fragmented = unalloc != null && req != null && unalloc >= req && (total == null || unalloc >= 0.01 * total);
        if (otherBig && (!fragmented || outside >= unalloc)) return IncidentKind.OOM_OTHER_PROCESS;
        if (fragmented) return IncidentKind.OOM_FRAGMENTATION;
        if (unalloc != null && total != null && unalloc >= 0.25 * total) return IncidentKind.OOM_FRAGMENTATION;
        return IncidentKind.OOM_CAPACITY;
    }

    public Diagnosis finish() {
        if (pending != null) flush();
        // the tool is a property of the whole log: its traceback often names it only after the error
        String tool = context.snapshot().tool();
        List<Incident> out = new ArrayList<>(incidents.size());
        for (Draft d : incidents) {
            JobContext.Snapshot job = d.job.tool() != null ? d.job
                    : new JobContext.Snapshot(tool, d.job.stage(), d.job.model(), d.job.width(), d.job.height(), d.job.batch());
            Advisor.Advice advice = Advisor.advise(d.kind, d.device, d.numbers, job, gpuMemory);
            out.add(new Incident(d.line, d.times, d.kind, d.device, d.message, d.numbers, job, advice.explanation(), advice.recommendations()));
        }
        return new Diagnosis(lines, List.copyOf(out), dropped, lastError, lastErrorLine);
    }
}
