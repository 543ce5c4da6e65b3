package dev.headroom.testing;

import dev.headroom.cuda.CudaUnavailable;
import dev.headroom.runtime.gpu.CudaOps;
import org.junit.jupiter.api.Assumptions;

/** Opens the first GPU for a test, or skips the test visibly with the reason when there is none. */
public final class Gpu {
    private Gpu() {}

    public static CudaOps openOrSkip() {
        try {
            return CudaOps.open(0);
        } catch (CudaUnavailable | UnsatisfiedLinkError e) {
            System.out.println("GPU TEST SKIPPED: " + e.getMessage());
            Assumptions.abort("no usable GPU: " + e.getMessage());
            throw new IllegalStateException("unreachable");
        }
    }
}
