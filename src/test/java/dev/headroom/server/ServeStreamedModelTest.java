package dev.headroom.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The server with a model whose kernels do not fit its device (RRDBNet x4 in fp32 on the CPU:
 * 67 MB of kernels under --vram-budget 48MiB): the residency manager loads it streamed, once, and
 * the jobs that run it side by side share it; each job's result is the bytes `headroom upscale`
 * writes with the model resident (no budget), and the model stays on the device, idle, afterwards.
 */
class ServeStreamedModelTest {
    @TempDir
    Path dir;

    @Test
    void jobsShareAStreamedModelAndGetTheResidentModelsBytes() throws Exception {
        byte[] img = TestImages.noise(40, 30, 21);
        Path in = dir.resolve("in.png"), ref = dir.resolve("ref.png");
        Files.write(in, img);
        Process cli = new ProcessBuilder(ServerProcess.java("upscale", in.toString(), "--synthetic", "rrdbnet-x4", "--device", "cpu", "--tile", "32",
                "-o", ref.toString(), "--quiet")).redirectErrorStream(true).start();
        String log = new String(cli.getInputStream().readAllBytes());
        assertEquals(0, cli.waitFor(), log);
        try (ServerProcess s = new ServerProcess(dir.resolve("data"), "--device", "cpu", "--vram-budget", "48MiB", "--max-concurrent", "2",
                "--cache", "0", "--model", "big=synthetic:rrdbnet-x4")) {
            assertEquals(200, s.post("/v1/queue/pause").status());
            List<String> ids = new ArrayList<>();
            for (int k = 0; k < 3; k++) {
                var r = s.submit("{\"task\":\"upscale\",\"model\":\"big\",\"priority\":0,\"tile\":32}", img);
                assertEquals(202, r.status(), r.text());
                ids.add(r.json().path("id").asText());
            }
            assertEquals(200, s.post("/v1/queue/resume").status());
            for (String id : ids) {
                JsonNode done = s.await(id, Duration.ofSeconds(150));
                assertEquals("succeeded", done.path("state").asText(), done + "\n" + s.log());
                assertArrayEquals(Files.readAllBytes(ref), s.get("/v1/jobs/" + id + "/result").body(), "job " + id + " differs from the resident model's image");
            }
            JsonNode d = s.get("/v1/devices").json().path("devices").get(0);
            long weights = d.path("bytes_by_category").path("weights").asLong();
            // all resident, its kernels alone would be 66.7 MB
            assertTrue(weights > 0 && weights < 48L << 20, "the model stays on the device, streamed: " + weights + " bytes of weights\n" + d);
            assertTrue(d.path("resident_models").toString().contains("big"), d.toString());
            assertEquals(0, d.path("reserved_bytes").asLong(), d.toString());
            String metrics = s.get("/metrics").text();
            assertEquals(0.0, ServeAdmissionTest.sample(metrics, "headroom_out_of_memory_errors_total"), metrics);
            assertEquals(1.0, ServeAdmissionTest.sample(metrics, "headroom_model_loads_total"), "loaded once, shared by the three jobs\n" + metrics);
        }
    }
}
