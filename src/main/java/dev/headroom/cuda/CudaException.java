package dev.headroom.cuda;

/**
 * A failed call into a CUDA library: which library and function, and the status it returned, by
 * number and by name (CUDA_ERROR_OUT_OF_MEMORY, NVRTC_ERROR_COMPILATION, CUDNN_STATUS_BAD_PARAM, ...).
 */
public class CudaException extends RuntimeException {
    private final String library;
    private final String function;
    private final int status;
    private final String statusName;

    public CudaException(String library, String function, int status, String statusName, String detail) {
        super(function + " failed: " + statusName + " (" + status + ")" + (detail == null || detail.isBlank() ? "" : ": " + detail));
        this.library = library;
        this.function = function;
        this.status = status;
        this.statusName = statusName;
    }

    public String library() {
        return library;
    }

    public String function() {
        return function;
    }

    public int status() {
        return status;
    }

    public String statusName() {
        return statusName;
    }

    /** Whether the failure was the device running out of memory (the degrade ladder retries these). */
    public boolean outOfMemory() {
        return statusName.contains("OUT_OF_MEMORY") || statusName.contains("ALLOC_FAILED");
    }
}
