package dev.headroom.core.diagnose;

import dev.headroom.core.Sizes;
import static dev.headroom.core.Sizes.format;

import java.util.ArrayList;
import java.util.List;

/**
 * Explains an incident in plain words and ranks what to change, using what the log says: the
 * numbers of the message, the card's size (from the message, or --gpu-memory), the tool, the stage
 * of the job, its resolution and batch size. Recommendations are ordered by expected effect; none
 * is offered that the log gives no reason for (no "lower the resolution" for an illegal access).
 */
public final class Advisor {
    private Advisor() {}

    public record Advice(String explanation, List<Incident.Recommendation> recommendations) {}

    private static final long GIB = 1L << 30;

    public static Advice advise(IncidentKind kind, String device, OomNumbers n, JobContext.Snapshot job, Long gpuMemoryOption) {
        Long card = n.total() != null ? n.total() : gpuMemoryOption;
        List<Incident.Recommendation> r = new ArrayList<>();
        String text = switch (kind) {
            case OOM_CAPACITY -> capacity(device, n, job, card, r);
            case OOM_FRAGMENTATION -> fragmentation(device, n, job, card, r);
            case OOM_OTHER_PROCESS -> otherProcess(device, n, job, card, r);
            case ILLEGAL_MEMORY_ACCESS -> illegalAccess(device, job, r);
            case CUBLAS_CUDNN_FAILURE -> libraryFailure(job, card, r);
            case WINDOWS_ACCESS_VIOLATION -> accessViolation(job, r);
            case HOST_OOM -> hostOom(job, r);
            case MPS_OOM -> mps(n, job, r);
            case DIRECTML_OOM -> directml(n, job, card, r);
            case OTHER_GPU_ERROR -> otherGpu(job, r);
        };
        return new Advice(text, List.copyOf(r));
    }

    private static void add(List<Incident.Recommendation> r, String action, String why) {
        r.add(new Incident.Recommendation(action, why));
    }

    private static String where(JobContext.Snapshot job) {
        StringBuilder sb = new StringBuilder();
        if (job.stage() != null) sb.append(" during ").append(job.stage());
        if (job.tool() != null) sb.append(" in ").append(job.tool());
        if (job.resolution() != null) sb.append(" at ").append(job.resolution());
        if (job.batch() != null && job.batch() > 1) sb.append(", batch ").append(job.batch());
        return sb.toString();
    }

    private static String capacity(String device, OomNumbers n, JobContext.Snapshot job, Long card, List<Incident.Recommendation> r) {
        String dev = device.toUpperCase(java.util.Locale.ROOT);
        StringBuilder t = new StringBuilder();
        if (n.requested() != null && n.total() != null) {
            long held = n.allocated() != null ? n.allocated() : 0;
            t.append(String.format("The %s job%s asked for %s more while PyTorch already held %s of this %s card", dev, where(job),
                    format(n.requested()), format(held), format(n.total())));
            if (n.free() != null) t.append(" (").append(format(n.free())).append(" free)");
            t.append(". ");
            if (n.requested() > n.total()) {
                t.append("A single allocation larger than the whole card cannot succeed at any setting of the memory allocator: the input is far too large for one pass.");
            } else if (held + n.requested() > n.total()) {
                t.append("Together that is more than the card has, so this is a true shortage of capacity, not fragmentation.");
            } else if (n.free() != null && n.free() >= n.requested()) {
                t.append("The driver reported enough free memory yet refused the allocation: reported free memory is not all allocatable "
                        + "(a per-process memory limit, Windows' display driver reserve, or memory shared with the system)"
                        + (n.asyncAllocator() ? ", or the cudaMallocAsync pool could not map it." : "."));
            } else if (n.asyncAllocator() && n.free() != null) {
                t.append(String.format("%s of the card is neither allocated by PyTorch nor free: memory cached by the cudaMallocAsync pool, "
                        + "or held by other processes (this message format cannot tell which).", format(Math.max(0, n.total() - n.free() - held))));
            } else {
                t.append("There was not enough free memory left for it.");
            }
        } else if (n.requested() != null && n.allocated() != null) {
            t.append(String.format("The %s job%s asked for %s more while PyTorch already held %s.", dev, where(job), format(n.requested()), format(n.allocated())));
        } else {
            t.append("The ").append(dev).append(" driver refused an allocation").append(where(job))
                    .append(" (the message gives no sizes: it came from the driver or a library rather than PyTorch's allocator).");
        }
        // with the async allocator, a large share of the card that is neither allocated nor free is the first thing to look at
        boolean hidden = n.asyncAllocator() && n.total() != null && n.free() != null
                && n.total() - n.free() - (n.allocated() == null ? 0 : n.allocated()) >= 0.2 * n.total();
        if (!hidden) shrinkAdvice(n, job, card, r);
        if (n.asyncAllocator()) {
            add(r, "Try PyTorch's default allocator instead of cudaMallocAsync (ComfyUI: --disable-cuda-malloc; elsewhere: unset PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync)",
                    "its pool keeps freed memory mapped, and its message shows no reserve to tell");
            add(r, "Check with nvidia-smi whether another process holds memory on this GPU", "this message format does not list other processes");
        }
        if (hidden) shrinkAdvice(n, job, card, r);
        toolAdvice(job, card, r);
        headroomAdvice(job, card, r);
        return t.toString();
    }

    private static String fragmentation(String device, OomNumbers n, JobContext.Snapshot job, Long card, List<Incident.Recommendation> r) {
        String t = String.format("The job%s asked for %s; PyTorch held %s reserved but unallocated, %s that it could not use because it "
                        + "was split into pieces too small for the request. That is fragmentation of PyTorch's cache, not a lack of memory.",
                where(job), n.requested() == null ? "memory" : format(n.requested()),
                format(n.reservedUnallocated()), n.requested() != null && n.reservedUnallocated() >= n.requested() ? "more than the request," : "a large share of the card,");
        String env = device.equals("hip") ? "PYTORCH_HIP_ALLOC_CONF" : "PYTORCH_CUDA_ALLOC_CONF";
        add(r, "Set " + env + "=expandable_segments:True before starting the program (PyTorch 2.1 or newer)",
                "segments then grow in place instead of leaving gaps; this removes most fragmentation");
        add(r, "On an older PyTorch, set " + env + "=max_split_size_mb:128 instead", "large cached blocks are then not split for small requests");
        add(r, "Free the cache between jobs (torch.cuda.empty_cache(), or the tool's 'free memory' / unload-models button)",
                "returns the fragmented cache to the driver");
        shrinkAdvice(n, job, card, r);
        toolAdvice(job, card, r);
        return t;
    }

    private static String otherProcess(String device, OomNumbers n, JobContext.Snapshot job, Long card, List<Incident.Recommendation> r) {
        Long other = n.otherProcesses();
        Long outside = other != null ? other : n.heldOutsidePyTorch();
        StringBuilder t = new StringBuilder(String.format("The job%s failed to get %s, but of this %s card only %s was held by the job's own "
                        + "allocator while %s was held elsewhere", where(job),
                n.requested() == null ? "memory" : format(n.requested()), format(n.total()),
                format(n.thisProcess() != null ? n.thisProcess() : n.reserved() != null ? n.reserved() : 0), format(outside)));
        t.append(other != null ? " by other processes." : " (by other processes, or by this process outside PyTorch: CUDA context and libraries).");
        t.append(" Without that memory the job would have fit.");
        StringBuilder procs = new StringBuilder();
        for (OomNumbers.ProcessUse p : n.processes()) {
            if (procs.length() > 0) procs.append(", ");
            procs.append("PID ").append(p.pid()).append(" (").append(format(p.bytes())).append(")");
        }
        String smi = device.equals("hip") ? "rocm-smi" : device.equals("xpu") ? "xpu-smi" : "nvidia-smi";
        add(r, "Close the other programs using the GPU" + (procs.length() > 0 ? ": " + procs : "") + "; " + smi + " lists them",
                "gives the job back " + format(outside));
        add(r, "If another GPU is free, run the job there (CUDA_VISIBLE_DEVICES=1, or the tool's device option)", "a card nobody else uses");
        add(r, "Do not run two image tools (or a second instance of the same) on one card at once; if you must, give each a memory limit",
                "each caches memory and neither returns it to the other");
        toolAdvice(job, card, r);
        return t.toString();
    }

    private static String illegalAccess(String device, JobContext.Snapshot job, List<Incident.Recommendation> r) {
        String launch = device.equals("hip") ? "AMD_SERIALIZE_KERNEL=3" : "CUDA_LAUNCH_BLOCKING=1";
        add(r, "Update the GPU driver, and use a PyTorch build whose CUDA (or ROCm) version the driver supports", "mismatched drivers and libraries are the usual cause");
        add(r, "Disable custom or quantised kernels and attention back-ends (xformers, sage/flash attention, nunchaku, GGUF ops) and retry",
                "a bug in one kernel corrupts memory and is reported later, elsewhere");
        add(r, "Rerun with " + launch + " to find the operation that really failed", "errors are reported asynchronously, so the stack trace may point at the wrong place");
        add(r, "Remove GPU overclocks or undervolts", "unstable memory clocks produce exactly this error");
        return "A GPU kernel" + where(job) + " read or wrote memory it does not own. This is not a shortage of memory: lowering the resolution or "
                + "batch will not fix it. After it the GPU context is unusable until the program restarts.";
    }

    private static String libraryFailure(JobContext.Snapshot job, Long card, List<Incident.Recommendation> r) {
        add(r, "Treat it as out of memory first: lower the resolution or batch, or free memory before this step",
                "cuBLAS/cuDNN report failed allocations of their handles and workspaces this way");
        add(r, "Make sure the cuDNN/cuBLAS that PyTorch loads match its build (no other CUDA toolkit earlier on PATH or LD_LIBRARY_PATH)",
                "a mismatched library fails the same way with plenty of memory free");
        add(r, "If memory is plentiful, set torch.backends.cudnn.benchmark=False (or the tool's option)", "fewer algorithms need large workspaces");
        toolAdvice(job, card, r);
        return "A cuBLAS or cuDNN call" + where(job) + " failed to allocate its handle or workspace, or found no convolution algorithm that fits. "
                + "Most often the GPU was already nearly full; sometimes the library does not match the driver or PyTorch build.";
    }

    private static String accessViolation(JobContext.Snapshot job, List<Incident.Recommendation> r) {
        add(r, "Enlarge the Windows page file (System > Advanced > Performance > Virtual memory; 32 GB or more, or system-managed on a drive with space)",
                "loading large checkpoints needs RAM plus page file; when both run out, native code crashes instead of raising an error");
        add(r, "Use fp16 or smaller (pruned, fp8, GGUF) model files, and load one model at a time", "less system memory while loading");
        add(r, "Update the GPU driver and the tool's Python packages; reinstall the embedded Python if the crash names a DLL",
                "a damaged or mismatched native library crashes the same way");
        add(r, "Remove custom nodes or extensions added just before the crash started", "native extensions are a common source");
        return "The process was killed by a Windows access violation (exit code 3221225477 / 0xC0000005)" + where(job) + ": native code touched memory "
                + "it could not. With image tools this usually happens while loading a model when system memory and the page file run out, "
                + "or from a broken native library. It is not the GPU running out.";
    }

    private static String hostOom(JobContext.Snapshot job, List<Incident.Recommendation> r) {
        add(r, "Give the machine more memory to commit: a larger page file (Windows) or swap (Linux), or close other programs",
                "the allocation failed in system RAM, not on the GPU");
        add(r, "Load models in fp16 and keep fewer models loaded at once (tool options such as --lowram, or unload unused models)", "halves what sits in RAM");
        add(r, "Lower the batch size or the number of frames processed together", "for video and batches, host buffers scale with both");
        return "Allocation in system memory (RAM) failed" + where(job) + ". The GPU is not the limit here: PyTorch's CPU allocator, NumPy or the OS "
                + "could not get memory, so offloading more to the CPU would make it worse.";
    }

    private static String mps(OomNumbers n, JobContext.Snapshot job, List<Incident.Recommendation> r) {
        add(r, "Lower the resolution or batch, or use a smaller model (fp16, pruned)", "unified memory is shared with the whole system");
        add(r, "Close other applications that use a lot of memory", "they count against the same limit (\"other allocations\")");
        add(r, "Only if you accept the risk of freezing the system: PYTORCH_MPS_HIGH_WATERMARK_RATIO=0.0 removes PyTorch's limit", "the limit exists to keep macOS responsive");
        String nums = n.mpsAllocated() == null ? "" : String.format(" PyTorch held %s, other allocations %s, against a limit of %s.",
                format(n.mpsAllocated()), format(n.mpsOther()), format(n.mpsMaxAllowed()));
        return "The Apple GPU (MPS) ran out of its allowed share of unified memory" + where(job) + "." + nums;
    }

    private static String directml(OomNumbers n, JobContext.Snapshot job, Long card, List<Incident.Recommendation> r) {
        shrinkAdvice(n, job, card, r);
        add(r, "On AMD under Windows, prefer ZLUDA or ROCm builds over DirectML", "DirectML's allocator holds memory longer and reports no details");
        toolAdvice(job, card, r);
        return "DirectML could not allocate " + (n.requested() == null ? "a tensor" : format(n.requested())) + where(job)
                + ". DirectML reports no totals, so the card's use cannot be broken down; lowering sizes is the reliable remedy.";
    }

    private static String otherGpu(JobContext.Snapshot job, List<Incident.Recommendation> r) {
        add(r, "Rerun with CUDA_LAUNCH_BLOCKING=1 to see which operation fails", "GPU errors are reported asynchronously");
        add(r, "Check that the PyTorch build supports this GPU and driver (no kernel image / driver version errors mean a mismatch)", "most such errors are version mismatches");
        return "A GPU error that is not about memory" + where(job) + ": a failed assertion, a bad kernel or a driver mismatch. Lowering sizes will not help.";
    }

    /** Smaller steps: resolution (with a rough target), batch, tiles. */
    private static void shrinkAdvice(OomNumbers n, JobContext.Snapshot job, Long card, List<Incident.Recommendation> r) {
        if ("DDColor colorization".equals(job.stage())) {
            ddcolor(job, card, r);
            return;
        }
        boolean vae = "VAE decode".equals(job.stage());
        if (vae) addTiledVae(r);
        if (job.batch() != null && job.batch() > 1) {
            add(r, "Lower the batch size from " + job.batch() + " to 1 (use gradient accumulation when training)", "memory for activations grows with the batch");
        }
        Long avail = n.free() == null ? null : n.free() + (n.reservedUnallocated() == null ? 0 : n.reservedUnallocated());
        if (job.width() != null && n.requested() != null && avail != null && n.requested() > avail && avail > 0) {
            double f = Math.sqrt(Math.max(0.05, (double) avail / n.requested()));
            int w = Math.max(64, (int) (job.width() * f) / 64 * 64), h = Math.max(64, (int) (job.height() * f) / 64 * 64);
            add(r, String.format("Lower the resolution from %s to about %dx%d, or process it in tiles", job.resolution(), w, h),
                    String.format("the failing step wanted %s with %s available; its memory grows about linearly with the pixel count",
                            format(n.requested()), format(avail)));
        } else {
            add(r, "Lower the resolution (or process the image in tiles)" + (job.resolution() != null ? ", down from " + job.resolution() : ""),
                    "activation memory grows with the pixel count");
        }
        if (job.stage() == null) addTiledVae(r);
        add(r, "Run in fp16 or bf16 rather than fp32 (drop --no-half / --precision full / --force-fp32 if set)", "halves weights and activations");
    }

    private static void addTiledVae(List<Incident.Recommendation> r) {
        add(r, "Decode with a tiled VAE (ComfyUI: VAE Decode (Tiled); diffusers: pipe.enable_vae_tiling(); webui: Tiled VAE / --medvram)",
                "VAE decoding at high resolution needs several times the memory of sampling");
    }

    private static void ddcolor(JobContext.Snapshot job, Long card, List<Incident.Recommendation> r) {
        String now = job.width() != null ? " (now " + job.width() + ")" : "";
        if (card != null && card <= 9 * GIB) {
            add(r, "Keep DDColor's input size at most 768 on this " + format(card) + " card" + now, "its memory grows with the square of the input size");
        } else if (card != null && card <= 13 * GIB) {
            add(r, "Keep DDColor's input size at most 960 for buildings and landscapes, and at most 680 for portraits, on this " + format(card) + " card" + now,
                    "the limits measured for 12 GB cards; portraits use the larger attention maps");
        } else {
            add(r, "Lower DDColor's input size" + now + " (on 12 GB cards the limits are 960 for buildings and 680 for portraits)",
                    "its memory grows with the square of the input size");
        }
        add(r, "Run DDColor in fp16", "halves its activations");
    }

    /** Switches of the tool named in the log. */
    private static void toolAdvice(JobContext.Snapshot job, Long card, List<Incident.Recommendation> r) {
        if (job.tool() == null) return;
        boolean small = card != null && card <= 8 * GIB + (GIB / 2);
        switch (job.tool()) {
            case "ComfyUI" -> add(r, "Start ComfyUI with " + (small ? "--lowvram" : "--reserve-vram 1") + " (and --disable-smart-memory if models stay loaded)",
                    small ? "keeps only the running part of the model on the card" : "leaves headroom for the driver and other programs");
            case "stable-diffusion-webui", "SD.Next" -> add(r, "Start the webui with " + (small ? "--medvram (or --lowvram on 4 GB)" : "--medvram-sdxl") + " and --xformers or SDP attention",
                    "moves idle parts of the model off the card");
            case "Forge" -> add(r, "In Forge, raise 'GPU Weights' headroom (lower the GPU weights slider) or set --always-offload-from-vram",
                    "Forge keeps as much as fits; headroom for activations avoids this");
            case "Fooocus" -> add(r, "Start Fooocus with --always-low-vram", "offloads the model between steps");
            case "InvokeAI" -> add(r, "In invokeai.yaml lower the VRAM cache (vram/max_cache_vram_gb) or enable 'enable_partial_loading'", "keeps fewer models on the card");
            case "diffusers" -> add(r, "Call pipe.enable_model_cpu_offload() (or enable_sequential_cpu_offload() on small cards) and pipe.enable_vae_tiling()",
                    "only the running component stays on the GPU");
            case "kohya sd-scripts" -> add(r, "Enable --gradient_checkpointing, --cache_latents, --mixed_precision bf16 and an 8-bit optimizer (AdamW8bit)",
                    "the largest savings in training memory");
            default -> { }
        }
    }

    /** Where headroom can run the same job within the card. */
    private static void headroomAdvice(JobContext.Snapshot job, Long card, List<Incident.Recommendation> r) {
        if (!"upscaling".equals(job.stage())) return;
        int tile = card == null ? 256 : card <= 6 * GIB ? 128 : card <= 12 * GIB ? 256 : 512;
        add(r, "Or upscale with headroom, which works in overlapping tiles blended without seams: headroom upscale IN.png -o OUT.png --model MODEL.pth --tile " + tile,
                "memory stays bounded by the tile, whatever the image size");
    }
}
