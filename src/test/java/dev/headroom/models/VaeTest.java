package dev.headroom.models;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.MapWeights;
import dev.headroom.core.TensorData;
import dev.headroom.models.arch.UnsupportedArchitecture;
import dev.headroom.models.arch.VaeArchitecture;
import dev.headroom.runtime.GraphRunner;
import dev.headroom.runtime.LayerTiledRunner;
import dev.headroom.runtime.Tensor;
import dev.headroom.runtime.cpu.CpuOps;
import dev.headroom.testing.RandomVae;
import dev.headroom.testing.Randoms;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * AutoencoderKL detection in the diffusers and LDM layouts, and the exact tiled decode: band by
 * band, layer by layer, against the whole-tensor decode on the CPU for random band heights and odd
 * sizes. The CPU gives the same bits (same arithmetic per pixel, same statistics sums in the same
 * order); the test allows fp32 rounding (1e-6 of the output's range) and prints the difference.
 */
class VaeTest {
    private final Random rnd = new Random(Randoms.seed());
    private static final VaeArchitecture.Config SMALL = new VaeArchitecture.Config(new int[] {32, 64}, 1, 4, true, true, true, true);

    @Test
    void detectsShapeAndLayoutAndTheLdmKeysGiveTheSameWeights() {
        Map<String, TensorData> sd = RandomVae.diffusers(SMALL, 7);
        VaeArchitecture.Detected d = VaeArchitecture.detect(sd);
        assertEquals("diffusers", d.layout());
        assertArrayEquals(new int[] {32, 64}, d.config().channels());
        assertEquals(1, d.config().layers());
        assertEquals(4, d.config().latent());
        assertTrue(d.config().quantConv() && d.config().postQuantConv());
        assertEquals(2, d.config().scale());

        Map<String, TensorData> ckpt = new java.util.LinkedHashMap<>(RandomVae.ldm(sd, 2, "first_stage_model."));
        ckpt.put("model.diffusion_model.input_blocks.0.0.weight", new TensorData("u", new int[] {1}, new float[1]));
        ckpt.put("cond_stage_model.transformer.text_model.encoder.layers.0.mlp.fc1.weight", new TensorData("t", new int[] {1}, new float[1]));
        VaeArchitecture.Detected l = VaeArchitecture.detect(ckpt);
        assertEquals("LDM", l.layout());
        assertEquals("first_stage_model.", l.prefix());
        assertEquals(d.weights().keySet(), l.weights().keySet());
        for (String k : d.weights().keySet()) {
            assertArrayEquals(d.weights().get(k).shape(), l.weights().get(k).shape(), k);
            assertArrayEquals(d.weights().get(k).data(), l.weights().get(k).data(), k);
        }
        // diffusers' older attention names (query, key, value, proj_attn) give the same weights too
        Map<String, TensorData> old = new java.util.LinkedHashMap<>();
        for (Map.Entry<String, TensorData> e : sd.entrySet()) {
            old.put(e.getKey().replace(".to_q.", ".query.").replace(".to_k.", ".key.").replace(".to_v.", ".value.").replace(".to_out.0.", ".proj_attn."), e.getValue());
        }
        assertTrue(old.containsKey("decoder.mid_block.attentions.0.proj_attn.weight"));
        VaeArchitecture.Detected o = VaeArchitecture.detect(old);
        assertEquals(d.weights().keySet(), o.weights().keySet());
        for (String k : d.weights().keySet()) assertArrayEquals(d.weights().get(k).data(), o.weights().get(k).data(), k);
        assertFalse(VaeArchitecture.isVaeKey("cond_stage_model.transformer.text_model.encoder.layers.0.mlp.fc1.weight"));
        assertFalse(VaeArchitecture.isVaeKey("model.diffusion_model.input_blocks.0.0.weight"));
        assertTrue(VaeArchitecture.isVaeKey("first_stage_model.decoder.up.3.block.0.norm1.weight"));
    }

    @Test
    void familyFollowsTheCheckpointsOtherKeys() {
        VaeArchitecture.Hints h = new VaeArchitecture.Hints();
        assertEquals(VaeArchitecture.Family.SDXL, h.family(4));
        assertEquals(VaeArchitecture.Family.FLUX, h.family(16));
        h.test("cond_stage_model.transformer.x");
        assertEquals(VaeArchitecture.Family.SD1, h.family(4));
        h.test("model.diffusion_model.joint_blocks.0.x");
        assertEquals(VaeArchitecture.Family.SD3, h.family(16));
        assertEquals(0.13025f, VaeArchitecture.Family.SDXL.scaling);
        assertEquals(0.1159f, VaeArchitecture.Family.FLUX.shift);
    }

    @Test
    void aCheckpointWithoutAVaeIsRefusedByName() {
        var e = assertThrows(UnsupportedArchitecture.class, () -> VaeArchitecture.detect(
                Map.of("model.diffusion_model.input_blocks.0.0.weight", new TensorData("u", new int[] {1}, new float[1]))));
        assertTrue(e.getMessage().contains("no VAE"), e.getMessage());
    }

    @Test
    void tiledDecodeEqualsTheWholeDecode() {
        try (CpuOps ops = new CpuOps()) {
            for (int trial = 0; trial < 4; trial++) {
                int latent = rnd.nextBoolean() ? 4 : 16;
                var config = new VaeArchitecture.Config(new int[] {32, 32, 64}, 1 + rnd.nextInt(2), latent, latent == 4, latent == 4, false, true);
                var d = VaeArchitecture.detect(RandomVae.diffusers(config, rnd.nextLong()));
                int h = 3 + rnd.nextInt(6), w = 3 + rnd.nextInt(6);
                Tensor z = Tensor.wrap(Randoms.floats(rnd, h * w * latent, 1f), 1, h, w, latent);
                try (GraphRunner runner = new GraphRunner(d.decoder(), new MapWeights(d.weights(), "random"), ops)) {
                    float[] whole = runner.run(z).toArray();
                    for (int k = 0; k < 3; k++) {
                        int rows = 1 + rnd.nextInt(4 * h + 2);
                        float[] tiled = new LayerTiledRunner(runner).run(z, rows).toArray();
                        // the same bands with every intermediate kept on the device, and with some: the same values
                        LayerTiledRunner kept = new LayerTiledRunner(runner);
                        assertArrayEquals(tiled, kept.run(z, rows, Long.MAX_VALUE).toArray(), "all intermediates on the device");
                        assertEquals(0, kept.storedBytes()[1], "nothing off the device with room for all");
                        long all = kept.storedBytes()[0];
                        long some = 1 + rnd.nextLong(all);
                        assertArrayEquals(tiled, kept.run(z, rows, some).toArray(), "intermediates within " + some + " of " + all + " bytes on the device");
                        assertEquals(all, kept.storedBytes()[0] + kept.storedBytes()[1], "every intermediate stored once, on the device or off it");
                        double max = 0, diff = 0;
                        for (int i = 0; i < whole.length; i++) {
                            max = Math.max(max, Math.abs(whole[i]));
                            diff = Math.max(diff, Math.abs(whole[i] - tiled[i]));
                        }
                        System.out.printf("tiled decode %dx%d latent %d, %d-row bands: max difference %.3g of max |output| %.3g%n", h, w, latent, rows, diff, max);
                        assertTrue(diff <= 1e-6 * max, "tiled differs by " + diff);
                    }
                }
            }
        }
    }

    /**
     * Where a level's channels change, a resnet's sum is of two convolutions that nothing else
     * reads (conv2 and conv_shortcut): the fused decoder must still compute both. The goldens' VAEs
     * have one channel count throughout, so this is where a fusion that dropped conv2 shows.
     */
    @Test
    void decoderAndEncoderWithChangingChannelsEqualTheirUnfusedGraphs() {
        var config = new VaeArchitecture.Config(new int[] {32, 64}, 1, 4, true, true, true, true);
        var weights = new MapWeights(VaeArchitecture.detect(RandomVae.diffusers(config, rnd.nextLong())).weights(), "random");
        Tensor z = Tensor.wrap(Randoms.floats(rnd, 5 * 4 * 4, 1f), 1, 5, 4, 4);
        Tensor image = Tensor.wrap(Randoms.floats(rnd, 10 * 6 * 3, 1f), 1, 10, 6, 3);
        try (CpuOps ops = new CpuOps()) {
            for (boolean decoder : new boolean[] {true, false}) {
                try (GraphRunner fused = new GraphRunner(decoder ? VaeArchitecture.decoder(config, true) : VaeArchitecture.encoder(config, true), weights, ops);
                     GraphRunner plain = new GraphRunner(decoder ? VaeArchitecture.decoder(config, false) : VaeArchitecture.encoder(config, false), weights, ops)) {
                    Tensor in = decoder ? z : image;
                    float[] want = plain.run(in).toArray(), got = fused.run(in).toArray();
                    for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], 1e-5 * (1 + Math.abs(want[i])), (decoder ? "decoder" : "encoder") + " element " + i);
                }
            }
        }
    }

    @Test
    void tiledEncodeEqualsTheWholeEncode() {
        try (CpuOps ops = new CpuOps()) {
            for (int trial = 0; trial < 3; trial++) {
                var config = new VaeArchitecture.Config(new int[] {32, 32, 32}, 1, 4, true, true, true, false);
                var d = VaeArchitecture.detect(RandomVae.diffusers(config, rnd.nextLong()));
                int h = 4 * (2 + rnd.nextInt(5)), w = 4 * (2 + rnd.nextInt(5));
                Tensor x = Tensor.wrap(Randoms.floats(rnd, h * w * 3, 1f), 1, h, w, 3);
                try (GraphRunner runner = new GraphRunner(d.encoder(), new MapWeights(d.weights(), "random"), ops)) {
                    float[] whole = runner.run(x).toArray();
                    for (int k = 0; k < 3; k++) {
                        int rows = 1 + rnd.nextInt(h / 4 + 1);
                        float[] tiled = new LayerTiledRunner(runner).run(x, rows).toArray();
                        assertArrayEquals(whole, tiled, "encode " + h + "x" + w + " in " + rows + "-row bands");
                    }
                }
            }
        }
    }

    /** The planner's tiled peak (what {@code decode} fits bands to the budget with) bounds what a tiled decode allocates. */
    @Test
    void plannedTiledPeakBoundsTheMeasuredOne() {
        var config = new VaeArchitecture.Config(new int[] {32, 32, 64}, 1, 4, true, true, false, true);
        var d = VaeArchitecture.detect(RandomVae.diffusers(config, 11));
        int h = 9 + rnd.nextInt(8), w = 9 + rnd.nextInt(8);
        Tensor z = Tensor.wrap(Randoms.floats(rnd, h * w * 4, 1f), 1, h, w, 4);
        for (int rows : new int[] {4, 9, 4 * h}) {
            for (long allowance : new long[] {0, 20_000 + rnd.nextInt(200_000)}) {
                try (CpuOps ops = new CpuOps(); GraphRunner runner = new GraphRunner(d.decoder(), new MapWeights(d.weights(), "random"), ops)) {
                    long before = ops.memory().stats().allocated();
                    LayerTiledRunner tiled = new LayerTiledRunner(runner);
                    tiled.run(z, rows, allowance);
                    long measured = ops.memory().stats().allocatedPeak() - before;
                    long predicted = dev.headroom.core.plan.LayerBands.peak(d.decoder(), h, w, rows, ops.memoryModel());
                    System.out.printf("tiled decode %dx%d in %d-row bands, %d bytes kept on the device (allowed %d): allocated peak %d bytes, predicted %d + allowance%n",
                            h, w, rows, tiled.storedBytes()[0], allowance, measured, predicted);
                    assertTrue(measured <= predicted + allowance, "measured " + measured + " > predicted " + predicted + " + allowance " + allowance);
                    assertTrue(predicted <= 3 * measured, "prediction " + predicted + " is far above the measured " + measured);
                }
            }
        }
    }

    @Test
    void encoderMakesMomentsAtAnEighthOfTheSize() {
        var config = new VaeArchitecture.Config(new int[] {32, 32, 32, 32}, 1, 4, true, true, true, true);
        var d = VaeArchitecture.detect(RandomVae.diffusers(config, 3));
        try (CpuOps ops = new CpuOps(); GraphRunner enc = new GraphRunner(d.encoder(), new MapWeights(d.weights(), "random"), ops)) {
            Tensor out = enc.run(Tensor.wrap(Randoms.floats(rnd, 24 * 16 * 3, 1f), 1, 24, 16, 3));
            assertArrayEquals(new int[] {1, 3, 2, 8}, new int[] {out.n, out.h, out.w, out.c});
        }
    }
}
