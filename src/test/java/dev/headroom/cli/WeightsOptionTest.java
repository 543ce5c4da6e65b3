package dev.headroom.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.Precision;
import dev.headroom.models.SyntheticModels;
import dev.headroom.testing.SafetensorsFiles;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** `--weights` on upscale (a compact format runs; an unknown one is a one-line usage error), plan and models inspect (the stored size). */
class WeightsOptionTest {
    @org.junit.jupiter.api.io.TempDir
    static Path dir;

    @BeforeAll
    static void setUp() throws Exception {
        CliTest.dir = dir;
        CliTest.images();
    }

    @Test
    void upscaleHoldsKernelsAsAskedAndRefusesUnknownFormats() throws Exception {
        Path model = dir.resolve("srvgg.safetensors");
        SafetensorsFiles.write(model, SyntheticModels.stateDict("srvgg-x4", 3), Precision.F16);
        for (String f : new String[] {"int8", "fp8", "nf4", "bf16"}) {
            Path out = dir.resolve("w-" + f + ".png");
            var r = CliTest.headroom("upscale", CliTest.photo.toString(), "--model", model.toString(), "--device", "cpu", "--weights", f, "--json", "-o", out.toString());
            assertEquals(0, r.status(), r.err());
            assertTrue(Files.size(out) > 0);
        }
        Path out = dir.resolve("w-bad.png");
        CliTest.assertRefused(CliTest.headroom("upscale", CliTest.photo.toString(), "--model", model.toString(), "--device", "cpu", "--weights", "int3",
                "-o", out.toString()), "--weights", out);
    }

    @Test
    void planAndInspectKnowTheStoredSize() throws Exception {
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        long[] plan = new long[2], inspect = new long[2];
        String[][] formats = {{}, {"--weights", "nf4"}};
        for (int i = 0; i < 2; i++) {
            var p = CliTest.headroom(concat(new String[] {"plan", "--synthetic", "srvgg-x4", "--size", "256x256", "--device", "cpu", "--json"}, formats[i]));
            assertEquals(0, p.status(), p.err());
            plan[i] = json.readTree(p.out()).path("weights_bytes").asLong();
            var m = CliTest.headroom(concat(new String[] {"models", "inspect", "--json"}, formats[i]));
            assertEquals(0, m.status(), m.err());
            inspect[i] = json.readTree(m.out()).path("weight_bytes").asLong();
        }
        assertTrue(plan[1] > 0 && plan[1] < plan[0] / 4, "plan: nf4 " + plan[1] + " bytes against fp32 " + plan[0]);
        assertTrue(inspect[1] > 0 && inspect[1] < inspect[0] / 4, "inspect: nf4 " + inspect[1] + " bytes against fp32 " + inspect[0]);
        var bad = CliTest.headroom("plan", "--synthetic", "srvgg-x4", "--size", "256x256", "--device", "cpu", "--weights", "int3");
        assertEquals(2, bad.status(), bad.err());
    }

    /**
     * `plan --weight-budget` plans with the weights as the streaming planner would hold them:
     * fewer weight bytes than resident, within the budget, what is streamed and the cost model's
     * pass; a budget too small for the slots, or malformed, is bad input (exit 2). (The option was
     * accepted and ignored before.)
     */
    @Test
    void planShowsWhatAWeightBudgetStreams() throws Exception {
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        String[] base = {"plan", "--synthetic", "rrdbnet-x4", "--size", "512x512", "--vram", "200MiB", "--json"};
        var whole = CliTest.headroom(base);
        assertEquals(0, whole.status(), whole.err());
        var streamed = CliTest.headroom(concat(base, new String[] {"--weight-budget", "8MiB"}));
        assertEquals(0, streamed.status(), streamed.err());
        var w = json.readTree(whole.out()).path("weights_bytes").asLong();
        var s = json.readTree(streamed.out());
        long held = s.path("weights_bytes").asLong();
        assertTrue(held > 0 && held <= 8L << 20 && held < w / 3, held + " bytes of weights planned within 8 MiB, against " + w + " resident");
        var split = s.path("weights_streamed");
        assertTrue(split.path("layers").asInt() > 0 && split.path("slots").asInt() >= 2, split.toString());
        assertEquals(held, split.path("resident_bytes").asLong() + split.path("slots").asLong() * split.path("slot_bytes").asLong(), split.toString());
        assertTrue(split.path("modelled_pass_ms").asDouble() >= split.path("modelled_resident_pass_ms").asDouble(), split.toString());
        assertTrue(json.readTree(CliTest.headroom(concat(base, new String[] {"--weight-budget", "1GiB"})).out()).path("weights_streamed").isMissingNode(),
                "a budget that holds everything streams nothing");
        var tiny = CliTest.headroom(concat(base, new String[] {"--weight-budget", "1KiB"}));
        assertEquals(2, tiny.status(), tiny.err());
        assertTrue(tiny.err().contains("give the weights at least"), tiny.err());
        assertEquals(2, CliTest.headroom(concat(base, new String[] {"--weight-budget", "lots"})).status());
    }

    private static String[] concat(String[] a, String[] b) {
        String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    @Test
    void aWeightBudgetStreamsKernelsToTheSameImageAndATooSmallOneIsRefused() throws Exception {
        Path model = dir.resolve("srvgg-stream.safetensors");
        SafetensorsFiles.write(model, SyntheticModels.stateDict("srvgg-x4", 3), Precision.F16);
        Path whole = dir.resolve("s-whole.png"), streamed = dir.resolve("s-streamed.png");
        var a = CliTest.headroom("upscale", CliTest.photo.toString(), "--model", model.toString(), "--device", "cpu", "-o", whole.toString());
        assertEquals(0, a.status(), a.err());
        var b = CliTest.headroom("upscale", CliTest.photo.toString(), "--model", model.toString(), "--device", "cpu", "--weight-budget", "1MiB",
                "-o", streamed.toString());
        assertEquals(0, b.status(), b.err());
        assertTrue(java.util.Arrays.equals(Files.readAllBytes(whole), Files.readAllBytes(streamed)), "streamed kernels give the same image");
        Path out = dir.resolve("s-tiny.png");
        CliTest.assertRefused(CliTest.headroom("upscale", CliTest.photo.toString(), "--model", model.toString(), "--device", "cpu", "--weight-budget", "100KiB",
                "-o", out.toString()), "--weight-budget", out);
    }

    @Test
    void benchReportsWhatItStreamed() throws Exception {
        var r = CliTest.headroom("bench", "--synthetic", "srvgg-x4", "--tile", "16", "--runs", "1", "--device", "cpu", "--weight-budget", "1MiB", "--json");
        assertEquals(0, r.status(), r.err());
        var row = new com.fasterxml.jackson.databind.ObjectMapper().readTree(r.out()).get("results").get(0);
        assertTrue(row.get("weights_streamed").get("layers").asInt() > 0, r.out());
        assertTrue(row.get("weights_streamed").get("copies").asLong() > 0, r.out());
        assertTrue(row.get("recording_refused").asText().contains("streamed"), r.out());
    }

    /**
     * A model whose weights do not fit the device budget (RRDBNet x4 in fp32 on the CPU: 67 MB
     * against 48 MiB) runs with --weight-budget, or without it (the planner chooses the split),
     * the fitter counting only the resident layers and the slots, and gives the image it gives
     * with no budget at all.
     */
    @Test
    void aModelLargerThanTheBudgetRunsStreamed() throws Exception {
        Path full = dir.resolve("r-full.png"), streamed = dir.resolve("r-streamed.png");
        var a = CliTest.headroom("upscale", CliTest.photo.toString(), "--synthetic", "rrdbnet-x4", "--device", "cpu", "-o", full.toString());
        assertEquals(0, a.status(), a.err());
        var b = CliTest.headroom("upscale", CliTest.photo.toString(), "--synthetic", "rrdbnet-x4", "--device", "cpu", "--vram-budget", "48MiB",
                "--weight-budget", "16MiB", "-o", streamed.toString());
        assertEquals(0, b.status(), b.err());
        assertTrue(java.util.Arrays.equals(Files.readAllBytes(full), Files.readAllBytes(streamed)), "the same image, streamed under a budget");
        Path auto = dir.resolve("r-auto.png");   // no --weight-budget: the planner streams what does not fit beside a tile
        var c = CliTest.headroom("upscale", CliTest.photo.toString(), "--synthetic", "rrdbnet-x4", "--device", "cpu", "--vram-budget", "48MiB",
                "-o", auto.toString());
        assertEquals(0, c.status(), c.err());
        assertTrue(c.err().contains("layers are streamed"), c.err());
        assertTrue(java.util.Arrays.equals(Files.readAllBytes(full), Files.readAllBytes(auto)), "the same image, streamed as the planner chose");
        assertTrue(!a.err().contains("streamed"), "nothing streamed without a budget: " + a.err());
    }
}
