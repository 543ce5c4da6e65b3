package dev.headroom.runtime.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The CUDA sources as NVRTC gets them: the shared header in place of its include line, once, in each. */
class KernelSourceTest {
    @Test
    void everySourceGetsTheSharedHeaderOnceAndNoIncludeLine() {
        for (String r : new String[] {"/dev/headroom/runtime/gpu/kernels.cu", "/dev/headroom/runtime/gpu/vae_kernels.cu"}) {
            String s = KernelCache.source(r);
            assertFalse(s.contains("#include"), r + " still has an include line");
            assertEquals(1, s.split("struct half_t \\{", -1).length - 1, r + ": half_t defined once");
            assertTrue(s.contains("__device__ __forceinline__ void store(bf16_t*"), r + " lacks the bf16 store");
        }
    }
}
