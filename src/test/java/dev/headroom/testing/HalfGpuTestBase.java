package dev.headroom.testing;

import dev.headroom.core.Precision;
import dev.headroom.runtime.gpu.CudaOps;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/** A GPU test class that also needs the device in fp16: {@link #half} beside the fp32 {@code gpu}, closed (and audited) at the end. */
public abstract class HalfGpuTestBase extends GpuTestBase {
    protected static CudaOps half;

    @BeforeAll
    static void openHalfGpu() {
        half = Gpu.tryOpen(Precision.F16);
    }

    @AfterAll
    static void closeHalfGpu() {
        if (half != null) half.close();
        half = null;
    }
}
