package dev.headroom.models;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.MapWeights;
import dev.headroom.models.arch.VaeArchitecture;
import dev.headroom.runtime.Tensor;
import dev.headroom.runtime.cpu.CpuOps;
import dev.headroom.runtime.memory.DeviceMemory;
import dev.headroom.runtime.memory.DeviceOutOfMemory;
import dev.headroom.testing.RandomVae;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * A VAE decode with an allocation failed for good at every request in turn: it shrinks (whole to
 * bands, bands to half) and ends with the very image of the unfailed decode (tiled equals whole
 * bit for bit on the CPU); failing every request from one on ends in the typed error. Either way
 * the activations and workspace are back to zero.
 */
class VaeFaultTest {
    private static final VaeArchitecture.Config CONFIG = new VaeArchitecture.Config(new int[] {32, 32}, 1, 4, true, true, false, true);
    private static final VaeArchitecture.Detected D = VaeArchitecture.detect(RandomVae.diffusers(CONFIG, 21));
    private static final Tensor LATENT = Tensor.wrap(dev.headroom.testing.Randoms.floats(new java.util.Random(4), 9 * 7 * 4, 1f), 1, 9, 7, 4);

    private static Vae vae() {
        return new Vae(Path.of("random.safetensors"), "safetensors", "F32", VaeArchitecture.Family.SDXL, "test", D, new MapWeights(D.weights(), "random"),
                VaeArchitecture.Family.SDXL.scaling, 0f);
    }

    private static void assertBaseline(DeviceMemory m) {
        assertEquals(0L, m.usedByCategory().getOrDefault("activations", 0L), "activations back to zero");
        assertEquals(0L, m.usedByCategory().getOrDefault("workspace", 0L), "workspace back to zero");
        assertEquals(0L, m.stats().allocated());
    }

    @Test
    void failingAnyAllocationForGoodShrinksToBandsAndGivesTheSameImage() {
        float[] expected;
        long requests;
        try (CpuOps ops = new CpuOps(); VaeCodec codec = new VaeCodec(vae(), ops, true, false)) {
            long[] count = {0};
            ops.memory().injectFaults((request, attempt) -> {
                count[0] = request;
                return false;
            });
            expected = codec.decode(LATENT, 0).toArray();
            requests = count[0];
        }
        assertTrue(requests > 10, "the decode makes " + requests + " requests");
        for (long n = 1; n <= requests; n++) {
            final long fail = n;
            try (CpuOps ops = new CpuOps(); VaeCodec codec = new VaeCodec(vae(), ops, true, false)) {
                ops.memory().injectFaults((request, attempt) -> request == fail);
                float[] got = codec.decode(LATENT, 0).toArray();
                assertArrayEquals(expected, got, "request " + n + " failed");
                assertEquals(9, codec.lastBandRows(), "whole (18 output rows) shrank to bands of half the height");
                assertEquals(1L, ops.memory().rungs().get("shrink-bands"));
                assertBaseline(ops.memory());
            }
        }
    }

    @Test
    void failingEveryAllocationFromOneOnEndsInATypedErrorAndNoLeak() {
        for (long n : new long[] {1, 2, 5, 9, 17}) {
            final long from = n;
            try (CpuOps ops = new CpuOps(); VaeCodec codec = new VaeCodec(vae(), ops, true, false)) {
                ops.memory().injectFaults((request, attempt) -> request >= from);
                var e = assertThrows(DeviceOutOfMemory.class, () -> codec.decode(LATENT, 0), "failing from request " + n);
                assertTrue(e.getMessage().startsWith("out of memory on cpu"), e.getMessage());
                assertBaseline(ops.memory());
            }
        }
    }
}
