package dev.headroom.models;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.models.arch.VaeArchitecture;
import dev.headroom.runtime.Ops;
import dev.headroom.runtime.Tensor;
import dev.headroom.runtime.cpu.CpuOps;
import dev.headroom.testing.Golden;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Seeded small AutoencoderKLs in every key layout (diffusers; an SDXL-style whole checkpoint with
 * LDM keys under first_stage_model. beside stand-in UNet and text-encoder tensors; FLUX's
 * ae.safetensors with 16 latent channels) against PyTorch's float64 outputs
 * (scripts/golden/make_vae_golden.py): decoder output whole and exactly tiled, and encoder moments,
 * within 1e-4 relative in fp32. A VAE whose channels change between levels, against a float64
 * numpy decode, covers what those VAEs (one channel count throughout) cannot.
 */
public class GoldenVaeTest {
    public static final String CASES = """
            vae-sd.diffusers.safetensors,       vae-sd,   SDXL, diffusers
            vae-sd.sdxl-checkpoint.safetensors, vae-sd,   SDXL, LDM
            vae-flux.ae.safetensors,            vae-flux, FLUX, LDM
            """;

    @ParameterizedTest(name = "{0}")
    @CsvSource(textBlock = CASES)
    void matchesPyTorch(String file, String golden, String family, String layout) {
        try (CpuOps ops = new CpuOps()) {
            check(ops, file, golden, family, layout, 1e-4);
        }
    }

    /**
     * A VAE whose channels change between levels (64 then 32: conv_shortcut, stored as LDM's
     * nin_shortcut; two channels per group at 64), which the PyTorch goldens' VAEs do not have,
     * against a float64 numpy decode (scripts/golden/vae_numpy_check.py --golden): whole and tiled.
     */
    @org.junit.jupiter.api.Test
    void changingChannelsMatchTheNumpyDecode() {
        try (CpuOps ops = new CpuOps()) {
            checkChangingChannels(ops, 1e-4);
        }
    }

    public static void checkChangingChannels(Ops ops, double tolerance) {
        Vae vae = Vae.load(Golden.dir().resolve("vae-cs.ldm.safetensors"));
        assertEquals("LDM", vae.detected().layout(), vae.describe());
        assertArrayEquals(new int[] {32, 64}, vae.config().channels(), vae.describe());
        Golden z = Golden.read("vae-cs.latent.hrt"), want = Golden.read("vae-cs.decoded.hrt");
        try (VaeCodec codec = new VaeCodec(vae, ops, true, false)) {
            decodes(codec, z, want, new int[] {0, 3, 7}, "vae-cs.ldm.safetensors (channels 32/64)", ops, tolerance);
        }
    }

    /** Decodes z whole (0) and in bands of each of {@code bands} rows, each within {@code tolerance} of {@code want}. */
    private static void decodes(VaeCodec codec, Golden z, Golden want, int[] bands, String label, Ops ops, double tolerance) {
        Tensor zt = Tensor.wrap(z.data(), z.shape()[0], z.shape()[1], z.shape()[2], z.shape()[3]);
        for (int rows : bands) {
            Tensor out = codec.decodeRaw(zt, rows);
            assertArrayEquals(want.shape(), new int[] {out.n, out.h, out.w, out.c});
            double err = Golden.relativeError(out.toArray(), want.data());
            System.out.printf("%-36s decode %s on %s: max error / max |output| = %.2e (tolerance %.0e)%n", label,
                    rows == 0 ? "whole" : "in " + rows + "-row bands", ops.name(), err, tolerance);
            assertTrue(err <= tolerance, label + " decode " + (rows == 0 ? "whole" : "in " + rows + "-row bands") + ": relative error " + err);
        }
    }

    /** Loads {@code file}, checks what was recognised, and compares decode (whole and tiled) and encode with the goldens. */
    public static void check(Ops ops, String file, String golden, String family, String layout, double tolerance) {
        Vae vae = Vae.load(Golden.dir().resolve(file));
        assertEquals(VaeArchitecture.Family.valueOf(family), vae.family(), vae.describe());
        assertEquals(layout, vae.detected().layout(), vae.describe());
        Golden z = Golden.read(golden + ".latent.hrt"), want = Golden.read(golden + ".decoded.hrt");
        Golden image = Golden.read("vae-image-28x20.hrt"), moments = Golden.read(golden + ".moments.hrt");
        try (VaeCodec codec = new VaeCodec(vae, ops, true, true)) {
            Tensor zt = Tensor.wrap(z.data(), z.shape()[0], z.shape()[1], z.shape()[2], z.shape()[3]);
            decodes(codec, z, want, new int[] {0, 5, 13}, file + " " + vae.family().label, ops, tolerance);
            // bands keep what fits on the device; with no room, every intermediate goes through host memory (pinned on CUDA)
            Tensor off = new dev.headroom.runtime.LayerTiledRunner(codec.decoder()).run(zt, 7, 0);
            double offErr = Golden.relativeError(off.toArray(), want.data());
            System.out.printf("%-36s %s decode in 7-row bands, all in host memory, on %s: max error / max |output| = %.2e%n", file, vae.family().label, ops.name(), offErr);
            assertTrue(offErr <= tolerance, file + " decode through host memory: relative error " + offErr);
            for (int rows : new int[] {0, 2, 3}) {
                Tensor m = codec.encodeRaw(Tensor.wrap(image.data(), image.shape()[0], image.shape()[1], image.shape()[2], image.shape()[3]), rows);
                assertArrayEquals(moments.shape(), new int[] {m.n, m.h, m.w, m.c});
                double err = Golden.relativeError(m.toArray(), moments.data());
                System.out.printf("%-36s %s encode %s on %s: max error / max |moments| = %.2e%n", file, vae.family().label,
                        rows == 0 ? "whole" : "in " + rows + "-row bands", ops.name(), err);
                assertTrue(err <= tolerance, file + " encode: relative error " + err);
            }
        }
    }
}
