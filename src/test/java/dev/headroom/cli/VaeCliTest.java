package dev.headroom.cli;

import static dev.headroom.cli.CliTest.headroom;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.TensorData;
import dev.headroom.models.LatentFiles;
import dev.headroom.models.arch.VaeArchitecture;
import dev.headroom.runtime.Tensor;
import dev.headroom.testing.RandomVae;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * decode, encode, plan and models inspect with a small seeded VAE in a whole-checkpoint layout,
 * and the bad inputs of the issue: a latent with the wrong number of channels, a truncated latent,
 * and a checkpoint without a VAE each end in one line, status 2, and no output file.
 */
class VaeCliTest {
    @TempDir
    static Path dir;
    static Path vae, latent;

    @BeforeAll
    static void files() throws Exception {
        var config = new VaeArchitecture.Config(new int[] {32, 32}, 1, 4, true, true, true, true);
        Map<String, TensorData> ckpt = new java.util.LinkedHashMap<>(RandomVae.ldm(RandomVae.diffusers(config, 5), 2, "first_stage_model."));
        ckpt.put("cond_stage_model.transformer.text_model.encoder.layers.0.mlp.fc1.weight", new TensorData("x", new int[] {2}, new float[2]));
        vae = dir.resolve("sd15-like.safetensors");
        RandomVae.writeSafetensors(RandomVae.named(ckpt), vae);
        latent = dir.resolve("latent.safetensors");
        float[] v = new float[5 * 6 * 4];
        for (int i = 0; i < v.length; i++) v[i] = (float) Math.sin(i);
        LatentFiles.writeSafetensors(Tensor.wrap(v, 1, 5, 6, 4), latent, "sd1");
    }

    @Test
    void decodesWholeAndTiledToTheSameImage() throws Exception {
        Path a = dir.resolve("whole.npy"), b = dir.resolve("tiled.npy"), png = dir.resolve("out.png");
        var r = headroom("decode", latent.toString(), "-o", a.toString(), "--model", vae.toString(), "--device", "cpu", "--json");
        assertEquals(0, r.status(), r.err());
        assertTrue(r.out().contains("\"mode\" : \"whole\""), r.out());
        assertTrue(r.out().contains("SD 1.x"), r.out());
        r = headroom("decode", latent.toString(), "-o", b.toString(), "--model", vae.toString(), "--device", "cpu", "--tile", "3", "-q");
        assertEquals(0, r.status(), r.err());
        assertTrue(java.util.Arrays.equals(Files.readAllBytes(a), Files.readAllBytes(b)), "tiled decode differs from whole");
        r = headroom("decode", latent.toString(), "-o", png.toString(), "--model", vae.toString(), "--device", "cpu", "-q");
        assertEquals(0, r.status(), r.err());
        assertTrue(Files.size(png) > 0);
    }

    @Test
    void repeatedDecodesReportForwardPassesAndAProfile() throws Exception {
        Path a = dir.resolve("repeat.npy");
        var r = headroom("decode", latent.toString(), "-o", a.toString(), "--model", vae.toString(), "--device", "cpu", "--repeat", "3", "--profile", "--json");
        assertEquals(0, r.status(), r.err());
        var json = new com.fasterxml.jackson.databind.ObjectMapper().readTree(r.out());
        var img = json.get("images").get(0);
        assertEquals(3, img.get("decode_seconds_each").size(), r.out());
        assertEquals(3, img.get("forward_seconds_each").size(), r.out());
        assertTrue(img.get("forward_seconds_median").asDouble() > 0, r.out());
        // every layer of the profiled pass is counted once: by op, and by op and shape, the same total
        var byOp = img.get("profile_ms_by_op");
        assertTrue(byOp.has("conv3x3") && byOp.has("group_norm+silu") && byOp.has("attention"), r.out());
        double ops = 0, shapes = 0;
        for (var e : byOp) ops += e.asDouble();
        for (var e : img.get("profile_ms_by_shape")) shapes += e.asDouble();
        assertEquals(ops, shapes, 0.05 + 1e-3 * ops, r.out());
        assertTrue(img.get("profile_ms_by_shape").fieldNames().next().matches("\\S+ .*>\\d+ @\\d+x\\d+"), r.out());
        assertEquals(null, System.getProperty("headroom.conv-timing"), "the decode's timing setting is not left behind");
    }

    @Test
    void encodesAnImageAndPlansAndInspects() throws Exception {
        Path out = dir.resolve("enc.safetensors");
        var r = headroom("encode", writePhoto(21, 16).toString(), "-o", out.toString(), "--model", vae.toString(), "--device", "cpu");
        assertError(r, "multiples of 2", out);
        Path img = writePhoto(20, 16);
        r = headroom("encode", img.toString(), "-o", out.toString(), "--model", vae.toString(), "--device", "cpu", "--json");
        assertEquals(0, r.status(), r.err());
        assertTrue(r.out().contains("\"latent_shape\" : [ 1, 4, 8, 10 ]"), r.out());
        assertEquals(4, LatentFiles.read(out).c);
        Path tiled = dir.resolve("enc-tiled.safetensors");
        r = headroom("encode", img.toString(), "-o", tiled.toString(), "--model", vae.toString(), "--device", "cpu", "--tile", "3", "--json");
        assertEquals(0, r.status(), r.err());
        assertTrue(r.out().contains("\"band_rows\" : 3"), r.out());
        assertTrue(java.util.Arrays.equals(Files.readAllBytes(out), Files.readAllBytes(tiled)), "tiled encode differs from whole");
        r = headroom("plan", "--model", vae.toString(), "--size", "64x48", "--vram", "8GiB");
        assertEquals(0, r.status(), r.err());
        assertTrue(r.out().contains("plan: whole"), r.out());
        r = headroom("models", "inspect", vae.toString());
        assertEquals(0, r.status(), r.err());
        assertTrue(r.out().contains("AutoencoderKL") && r.out().contains("SD 1.x VAE"), r.out());
    }

    private static Path writePhoto(int w, int h) throws Exception {
        Path p = dir.resolve("photo-" + w + "x" + h + ".png");
        var img = new java.awt.image.BufferedImage(w, h, java.awt.image.BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) img.setRGB(x, y, (x * 12) << 16 | (y * 15) << 8 | 90);
        javax.imageio.ImageIO.write(img, "png", p.toFile());
        return p;
    }

    @Test
    void wrongChannelsTruncatedLatentAndNoVaeAreOneLineErrors() throws Exception {
        Path out = dir.resolve("bad.png");
        Path three = dir.resolve("three.safetensors");
        LatentFiles.writeSafetensors(Tensor.wrap(new float[5 * 6 * 3], 1, 5, 6, 3), three, "x");
        var r = headroom("decode", three.toString(), "-o", out.toString(), "--model", vae.toString(), "--device", "cpu");
        assertError(r, "3 channels", out);

        Path cut = dir.resolve("cut.safetensors");
        byte[] full = Files.readAllBytes(latent);
        Files.write(cut, java.util.Arrays.copyOf(full, full.length - 7));
        r = headroom("decode", cut.toString(), "-o", out.toString(), "--model", vae.toString(), "--device", "cpu");
        assertError(r, "truncated", out);

        Path npy = dir.resolve("cut.npy");
        LatentFiles.writeNpy(Tensor.wrap(new float[4 * 5 * 6], 1, 4, 5, 6), npy);
        byte[] n = Files.readAllBytes(npy);
        Files.write(npy, java.util.Arrays.copyOf(n, n.length - 9));
        r = headroom("decode", npy.toString(), "-o", out.toString(), "--model", vae.toString(), "--device", "cpu");
        assertError(r, "truncated", out);

        Path unet = dir.resolve("unet-only.safetensors");
        RandomVae.writeSafetensors(Map.of("model.diffusion_model.input_blocks.0.0.weight",
                new TensorData("model.diffusion_model.input_blocks.0.0.weight", new int[] {2, 2}, new float[4])), unet);
        r = headroom("decode", latent.toString(), "-o", out.toString(), "--model", unet.toString(), "--device", "cpu");
        assertError(r, "no VAE", out);
    }

    private static void assertError(CliTest.Result r, String what, Path out) {
        assertEquals(2, r.status(), r.err());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().contains(what), r.err());
        assertFalse(Files.exists(out), "output left behind");
    }
}
