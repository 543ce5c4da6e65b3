package dev.headroom.testing;

import dev.headroom.cuda.CudaUnavailable;
import dev.headroom.runtime.gpu.CudaOps;
import org.junit.jupiter.api.Assumptions;

/**
 * Opens the first GPU for a test class; where there is none, every test of the class is skipped
 * (counted as skipped in the report) with the reason, and the reason is printed once.
 */
public final class Gpu {
    private Gpu() {}

    private static String reason;

    /** The GPU, or null when there is none (see {@link #assumePresent}). */
    public static CudaOps tryOpen() {
        return tryOpen(dev.headroom.core.Precision.F32);
    }

    public static CudaOps tryOpen(dev.headroom.core.Precision precision) {
        try {
            return CudaOps.open(0, precision);
        } catch (CudaUnavailable | UnsatisfiedLinkError e) {
            if (reason == null) System.out.println("GPU TESTS SKIPPED: " + e.getMessage());
            reason = e.getMessage();
            return null;
        }
    }

    /** Skips the calling test when {@code gpu} is null. */
    public static void assumePresent(CudaOps gpu) {
        Assumptions.assumeTrue(gpu != null, () -> "skipped, no usable GPU: " + reason);
    }
}
