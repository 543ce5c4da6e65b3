package dev.headroom.runtime.gpu;

import dev.headroom.core.Precision;
import dev.headroom.models.GoldenVaeTest;
import dev.headroom.testing.Gpu;
import dev.headroom.testing.GpuTestBase;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The small VAEs of {@link GoldenVaeTest} on CUDA against PyTorch's float64 outputs: fp32 within
 * 1e-4 relative (cuDNN without TF32, cuBLAS pedantic), fp16 storage within 2e-2; whole and exactly
 * tiled (bands kept on the device, and through pinned host memory in chunks) alike.
 */
class GpuVaeGoldenTest extends GpuTestBase {
    @ParameterizedTest(name = "{0}")
    @CsvSource(textBlock = GoldenVaeTest.CASES)
    void matchesPyTorchInFp32AndFp16(String file, String golden, String family, String layout) {
        GoldenVaeTest.check(gpu, file, golden, family, layout, 1e-4);
        try (CudaOps half = Gpu.tryOpen(Precision.F16)) {
            half.pinnedChunk(1000);   // bands through host memory split across many pinned chunks, rows across chunk edges
            GoldenVaeTest.check(half, file, golden, family, layout, 2e-2);
        }
    }

    @org.junit.jupiter.api.Test
    void changingChannelsMatchTheNumpyDecodeInFp32AndFp16() {
        GoldenVaeTest.checkChangingChannels(gpu, 1e-4);
        try (CudaOps half = Gpu.tryOpen(Precision.F16)) {
            GoldenVaeTest.checkChangingChannels(half, 2e-2);
        }
    }
}
