package dev.headroom.core.diagnose;

/** What went wrong, as headroom classifies it. */
public enum IncidentKind {
    OOM_CAPACITY("out of GPU memory: the job needs more than the card has"),
    OOM_FRAGMENTATION("out of GPU memory through fragmentation: memory PyTorch holds is free but in pieces"),
    OOM_OTHER_PROCESS("out of GPU memory because memory outside this job's allocator holds much of the card"),
    ILLEGAL_MEMORY_ACCESS("illegal memory access on the GPU (a bug or a driver/library mismatch, not a shortage)"),
    CUBLAS_CUDNN_FAILURE("cuBLAS/cuDNN could not get memory or a workable algorithm"),
    WINDOWS_ACCESS_VIOLATION("the process died with a Windows access violation (0xC0000005)"),
    HOST_OOM("out of system memory (RAM or page file), not GPU memory"),
    MPS_OOM("out of memory on Apple MPS (unified memory)"),
    DIRECTML_OOM("out of GPU memory under DirectML"),
    OTHER_GPU_ERROR("a GPU error that is not about memory");

    public final String title;

    IncidentKind(String title) {
        this.title = title;
    }

    public String slug() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }
}
