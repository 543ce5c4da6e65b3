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

    private static String[] concat(String[] a, String[] b) {
        String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
