package dev.headroom.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.headroom.testing.Golden;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * kill -9 of a real server process while jobs run: after a restart every accepted job succeeds
 * exactly once, and a job that was running at two crashes in a row fails instead of taking the
 * server down at every start.
 */
class ServeDurabilityTest {
    static final String[] OPTIONS = {"--device", "cpu", "--vram-budget", "256MiB", "--cache", "0", "--max-concurrent", "2",
            "--model", "rrdb=" + Golden.dir().resolve("rrdbnet-x2.pth")};

    @TempDir
    Path dir;

    @Test
    void fortyJobsSurviveKillNineExactlyOnce() throws Exception {
        Path data = dir.resolve("data");
        List<String> ids = new ArrayList<>();
        try (ServerProcess s = new ServerProcess(data, OPTIONS)) {
            for (int k = 0; k < 40; k++) {
                var r = s.submit("{\"model\":\"rrdb\",\"priority\":" + (k % 3 - 1) + ",\"tile\":32}", TestImages.noise(48 + k % 5 * 8, 40, 1000 + k));
                assertEquals(202, r.status(), r.text());
                ids.add(r.json().path("id").asText());
            }
            // kill -9 while jobs run, once a few have finished
            long until = System.nanoTime() + Duration.ofSeconds(120).toNanos();
            while (true) {
                long done = ids.stream().filter(id -> s.job(id).path("state").asText().equals("succeeded")).count();
                int running = s.get("/v1/devices").json().path("devices").get(0).path("running_jobs").size();
                if (done >= 3 && running > 0) break;
                assertTrue(System.nanoTime() < until, "jobs did not get going");
                Thread.sleep(20);
            }
            s.kill();
        }
        try (ServerProcess s = new ServerProcess(data, OPTIONS)) {
            Set<String> interrupted = new HashSet<>();
            for (String id : ids) {
                JsonNode j = s.await(id, Duration.ofSeconds(120));
                assertEquals("succeeded", j.path("state").asText(), j.toString());
                if (j.path("attempts").asInt() == 1) interrupted.add(id);
                assertTrue(j.path("attempts").asInt() <= 1, j.toString());
                assertEquals(200, s.get("/v1/jobs/" + id + "/result").status());
            }
            assertTrue(!interrupted.isEmpty(), "no job was running at the kill");
            JsonNode all = s.get("/v1/jobs?limit=1000").json().path("jobs");
            Set<String> listed = new HashSet<>();
            all.forEach(j -> assertTrue(listed.add(j.path("id").asText()), "job listed twice: " + j));
            assertEquals(new HashSet<>(ids), listed);
            // one result file per job, no temporaries left
            try (var files = Files.list(data.resolve("results"))) {
                assertEquals(40, files.filter(f -> !f.getFileName().toString().startsWith(".")).count());
            }
            try (var files = Files.list(data.resolve("results"))) {
                assertEquals(0, files.filter(f -> f.getFileName().toString().startsWith(".")).count());
            }
            int code = s.stop();
            assertTrue(code == 0 || code == 143, "exit " + code);
        }
    }

    @Test
    void aJobRunningAtTwoCrashesInARowFails() throws Exception {
        Path data = dir.resolve("poison");
        String id;
        try (ServerProcess s = new ServerProcess(data, OPTIONS)) {
            id = s.submit("{\"model\":\"rrdb\",\"tile\":32}", TestImages.noise(400, 400, 5)).json().path("id").asText();
            s.awaitState(id, "running", Duration.ofSeconds(60));
            s.kill();
        }
        try (ServerProcess s = new ServerProcess(data, OPTIONS)) {
            JsonNode j = s.awaitState(id, "running", Duration.ofSeconds(60));
            assertEquals(1, j.path("attempts").asInt(), j.toString());
            s.kill();
        }
        try (ServerProcess s = new ServerProcess(data, OPTIONS)) {
            JsonNode j = s.job(id);
            assertEquals("failed", j.path("state").asText(), j.toString());
            assertEquals(2, j.path("attempts").asInt());
            assertTrue(j.path("error").asText().contains("2 times in a row"), j.toString());
            assertTrue(s.log().contains("1 failed (interrupted twice)"), s.log());
            // the server goes on with other work
            String other = s.submit("{\"model\":\"rrdb\"}", TestImages.noise(20, 20, 6)).json().path("id").asText();
            assertEquals("succeeded", s.await(other, Duration.ofSeconds(60)).path("state").asText());
        }
    }
}
