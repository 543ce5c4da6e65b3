package dev.headroom.core.diagnose;

import dev.headroom.core.Sizes;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads the numbers out of every out-of-memory message format PyTorch has printed:
 * <ul>
 *   <li>1.0-1.3: "(GPU 0; 11.17 GiB total capacity; 10.40 GiB already allocated; 3.81 MiB free; 467.06 MiB cached)"</li>
 *   <li>1.4-2.0: "(GPU 0; 7.80 GiB total capacity; 6.39 GiB already allocated; 13.25 MiB free; 6.47 GiB reserved in total by PyTorch)"</li>
 *   <li>2.1 and later: "GPU 0 has a total capacity of X of which Y is free. Process N has Z memory in use. Including
 *       non-PyTorch memory, this process has W memory in use. Of the allocated memory A is allocated by PyTorch, and
 *       R is reserved by PyTorch but unallocated." (2.1 spelled it "capacty")</li>
 *   <li>XPU: either of the last two, sometimes without the free figure;</li>
 *   <li>MPS: "MPS backend out of memory (MPS allocated: X, other allocations: Y, max allowed: Z). Tried to allocate W";</li>
 *   <li>cudaMallocAsync back-end: "Allocation on device 0 would exceed allowed memory. (out of memory)
 *       Currently allocated : X Requested : Y Device limit : Z Free (according to CUDA): W";</li>
 *   <li>DirectML: "Could not allocate tensor with N bytes"; TensorFlow: "failed to allocate 17.79G (N bytes) from device".</li>
 * </ul>
 */
public final class MessageParser {
    private MessageParser() {}

    private static final String SIZE = "([0-9][0-9.,]*)\\s*(bytes|[KMGT]i?B|B)\\b";
    private static final Pattern REQUESTED = Pattern.compile("(?i)Tried to allocate " + SIZE);
    private static final Pattern GPU = Pattern.compile("\\bGPU (\\d+)");
    private static final Pattern TOTAL_OLD = Pattern.compile("(?i)" + SIZE + " total capacity");
    private static final Pattern TOTAL_NEW = Pattern.compile("(?i)total capac(?:i)?ty of " + SIZE);
    private static final Pattern FREE_OLD = Pattern.compile("(?i)" + SIZE + " free\\b");
    private static final Pattern FREE_NEW = Pattern.compile("(?i)of which " + SIZE + " is free");
    private static final Pattern ALLOCATED_OLD = Pattern.compile("(?i)" + SIZE + " already allocated");
    private static final Pattern ALLOCATED_NEW = Pattern.compile("(?i)allocated memory " + SIZE + " is allocated by PyTorch");
    private static final Pattern RESERVED_OLD = Pattern.compile("(?i)" + SIZE + " reserved in total by PyTorch");
    private static final Pattern CACHED_OLD = Pattern.compile("(?i)" + SIZE + " cached\\)");
    private static final Pattern UNALLOCATED_NEW = Pattern.compile("(?i)" + SIZE + " is reserved by PyTorch but unallocated");
    private static final Pattern THIS_PROCESS = Pattern.compile("(?i)this process has " + SIZE + " memory in use");
    private static final Pattern PROCESS = Pattern.compile("(?i)Process (\\d+) has " + SIZE + " memory in use");
    private static final Pattern MPS = Pattern.compile("(?i)MPS allocated: " + SIZE + ", other allocations: " + SIZE + ", max allowed: " + SIZE);
    private static final Pattern DIRECTML = Pattern.compile("(?i)Could not allocate tensor with ([0-9]+) bytes");
    private static final Pattern TF_BYTES = Pattern.compile("(?i)\\(([0-9]+) bytes\\) from device");
    private static final Pattern ASYNC = Pattern.compile("(?i)would exceed allowed memory");
    private static final Pattern ASYNC_REQUESTED = Pattern.compile("(?i)Requested\\s*:\\s*" + SIZE);
    private static final Pattern ASYNC_ALLOCATED = Pattern.compile("(?i)Currently allocated\\s*:\\s*" + SIZE);
    private static final Pattern ASYNC_LIMIT = Pattern.compile("(?i)Device limit\\s*:\\s*" + SIZE);
    private static final Pattern ASYNC_FREE = Pattern.compile("(?i)Free \\(according to CUDA\\)\\s*:\\s*" + SIZE);
    private static final Pattern DEVICE_N = Pattern.compile("(?i)on device (\\d+)");

    public static OomNumbers parse(String text) {
        boolean async = ASYNC.matcher(text).find();
        Long requested = first(size(REQUESTED, text), async ? size(ASYNC_REQUESTED, text) : null);
        if (requested == null) requested = first(longGroup(DIRECTML, text), longGroup(TF_BYTES, text));
        Integer gpu = null;
        Matcher g = (async ? DEVICE_N : GPU).matcher(text);
        if (g.find()) gpu = Integer.parseInt(g.group(1));
        Long total = first(size(TOTAL_NEW, text), size(TOTAL_OLD, text));
        Long free = first(size(FREE_NEW, text), size(FREE_OLD, text));
        Long allocated = first(size(ALLOCATED_NEW, text), size(ALLOCATED_OLD, text));
        if (async) {
            total = first(total, size(ASYNC_LIMIT, text));
            free = first(size(ASYNC_FREE, text), free);
            allocated = first(allocated, size(ASYNC_ALLOCATED, text));
        }
        Long reserved = size(RESERVED_OLD, text);
        Long unallocated = size(UNALLOCATED_NEW, text);
        if (unallocated == null) unallocated = size(CACHED_OLD, text);
        if (unallocated == null && reserved != null && allocated != null) unallocated = Math.max(0, reserved - allocated);
        if (reserved == null && unallocated != null && allocated != null) reserved = allocated + unallocated;
        Long thisProcess = size(THIS_PROCESS, text);
        List<OomNumbers.ProcessUse> procs = new ArrayList<>();
        Matcher p = PROCESS.matcher(text);
        while (p.find()) {
            long b = Sizes.parse(p.group(2), p.group(3));
            if (b >= 0) procs.add(new OomNumbers.ProcessUse(Long.parseLong(p.group(1)), b));
        }
        Long mpsAlloc = null, mpsOther = null, mpsMax = null;
        Matcher m = MPS.matcher(text);
        if (m.find()) {
            mpsAlloc = Sizes.parse(m.group(1), m.group(2));
            mpsOther = Sizes.parse(m.group(3), m.group(4));
            mpsMax = Sizes.parse(m.group(5), m.group(6));
        }
        return new OomNumbers(requested, gpu, total, free, allocated, reserved, unallocated, thisProcess, List.copyOf(procs),
                mpsAlloc, mpsOther, mpsMax, async);
    }

    private static Long size(Pattern p, String text) {
        Matcher m = p.matcher(text);
        if (!m.find()) return null;
        long v = Sizes.parse(m.group(1), m.group(2));
        return v < 0 ? null : v;
    }

    private static Long longGroup(Pattern p, String text) {
        Matcher m = p.matcher(text);
        return m.find() ? Long.parseLong(m.group(1)) : null;
    }

    private static Long first(Long a, Long b) {
        return a != null ? a : b;
    }
}
