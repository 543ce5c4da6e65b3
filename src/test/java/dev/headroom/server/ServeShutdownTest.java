package dev.headroom.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.headroom.testing.Golden;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** SIGTERM hands running work back to the queue (not counted as a crash), and --job-timeout stops a job at its next tile. */
class ServeShutdownTest {
    static final String RRDB = "rrdb=" + Golden.dir().resolve("rrdbnet-x2.pth");

    @TempDir
    Path dir;

    @Test
    void sigtermRequeuesRunningJobsWithoutCountingAnAttempt() throws Exception {
        Path data = dir.resolve("data");
        String id;
        try (ServerProcess s = new ServerProcess(data, "--device", "cpu", "--vram-budget", "256MiB", "--grace", "0", "--model", RRDB)) {
            id = s.submit("{\"model\":\"rrdb\",\"tile\":64}", TestImages.noise(160, 160, 3)).json().path("id").asText();
            s.awaitState(id, "running", Duration.ofSeconds(60));
            int code = s.stop();
            assertTrue(code == 0 || code == 143, "exit " + code);
        }
        // a crash mid-upload leaves Jetty's temporaries: the next start clears them
        Files.createDirectories(data.resolve("uploads/.multipart"));
        Files.writeString(data.resolve("uploads/.multipart/left-over"), "x");
        try (ServerProcess s = new ServerProcess(data, "--device", "cpu", "--vram-budget", "256MiB", "--model", RRDB)) {
            assertTrue(!s.log().contains("went back to the queue"), "a clean stop was taken for a crash: " + s.log());
            JsonNode j = s.await(id, Duration.ofSeconds(120));
            assertEquals("succeeded", j.path("state").asText(), j.toString());
            assertEquals(0, j.path("attempts").asInt(), j.toString());
        }
    }

    @Test
    void aJobPastTheTimeoutFailsAtItsNextTile() throws Exception {
        try (ServerProcess s = new ServerProcess(dir.resolve("t"), "--device", "cpu", "--vram-budget", "256MiB", "--job-timeout", "1",
                "--model", "srvgg=" + Golden.dir().resolve("srvgg-x4.pth"))) {
            String id = s.submit("{\"model\":\"srvgg\",\"tile\":32}", TestImages.noise(400, 400, 4)).json().path("id").asText();
            JsonNode j = s.await(id, Duration.ofSeconds(60));
            assertEquals("failed", j.path("state").asText(), j.toString());
            assertTrue(j.path("error").asText().contains("--job-timeout"), j.toString());
            JsonNode d = s.get("/v1/devices").json().path("devices").get(0);
            assertEquals(0, d.path("reserved_bytes").asLong(), d.toString());
        }
    }
}
