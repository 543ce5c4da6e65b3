package dev.headroom.cuda;

/** No usable CUDA here: a library is missing, too old, or there is no device. The message says which and what to do. */
public final class CudaUnavailable extends RuntimeException {
    public CudaUnavailable(String msg) {
        super(msg);
    }
}
