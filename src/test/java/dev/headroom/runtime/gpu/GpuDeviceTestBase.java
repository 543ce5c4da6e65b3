package dev.headroom.runtime.gpu;

import dev.headroom.cuda.CudaUnavailable;
import dev.headroom.runtime.memory.MemoryOptions;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;

/**
 * Base of GPU test classes that work on a whole {@link CudaDevice} (sessions, residency): the first
 * GPU opened once per class, each test skipped (and counted) where there is none, the device closed
 * at the end, which audits its memory for leaks.
 */
@Tag("gpu")
abstract class GpuDeviceTestBase {
    static CudaDevice device;
    private static String skipped;

    @BeforeAll
    static void openDevice() {
        try {
            device = CudaDevice.open(0, MemoryOptions.DEFAULT);
        } catch (CudaUnavailable | UnsatisfiedLinkError e) {
            skipped = e.getMessage();
            System.out.println("GPU TESTS SKIPPED: " + skipped);
        }
    }

    @AfterAll
    static void closeDevice() {
        if (device != null) device.close();
        device = null;
    }

    @BeforeEach
    void needsGpu() {
        Assumptions.assumeTrue(device != null, () -> "skipped, no usable GPU: " + skipped);
    }
}
