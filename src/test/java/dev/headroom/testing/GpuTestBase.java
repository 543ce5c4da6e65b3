package dev.headroom.testing;

import dev.headroom.runtime.gpu.CudaOps;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;

/**
 * Base of GPU test classes: one device per class, each test skipped (and counted) where there is
 * none, and the backend closed at the end, which audits the allocator for leaks.
 */
@Tag("gpu")
public abstract class GpuTestBase {
    protected static CudaOps gpu;

    @BeforeAll
    static void openGpu() {
        gpu = Gpu.tryOpen();
    }

    @BeforeEach
    void needsGpu() {
        Gpu.assumePresent(gpu);
    }

    /** close() audits the allocator: a buffer still live here fails the class. */
    @AfterAll
    static void closeGpu() {
        if (gpu != null) gpu.close();
        gpu = null;
    }
}
