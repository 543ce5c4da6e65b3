package dev.headroom.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.headroom.testing.Golden;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Admission on the CPU backend under --vram-budget: a mixed stream (several sizes, two models,
 * priorities) with up to 4 jobs at once never runs out of memory, never takes a rung of the
 * degrade ladder, and the ledger's peak never passes the budget, while jobs do run side by side.
 */
class ServeAdmissionTest {
    @TempDir
    Path dir;

    @Test
    void aMixedStreamNeverRunsOutOfMemoryAndStaysWithinTheBudget() throws Exception {
        long budget = 96L << 20;
        try (ServerProcess s = new ServerProcess(dir.resolve("data"), "--device", "cpu", "--vram-budget", "96MiB", "--max-concurrent", "4",
                "--cache", "0", "--model", "srvgg=" + Golden.dir().resolve("srvgg-x4.pth"), "--model", "rrdb=" + Golden.dir().resolve("rrdbnet-x2.pth"))) {
            Random r = new Random(16);
            List<String> ids = new ArrayList<>();
            int[][] sizes = {{24, 24}, {64, 48}, {120, 90}, {200, 150}, {40, 160}, {256, 200}};
            // queued while paused, so the whole stream meets the scheduler at once
            assertEquals(200, s.post("/v1/queue/pause").status());
            for (int k = 0; k < 24; k++) {
                int[] wh = sizes[r.nextInt(sizes.length)];
                String model = r.nextBoolean() ? "srvgg" : "rrdb";
                var resp = s.submit("{\"model\":\"" + model + "\",\"priority\":" + (r.nextInt(3) - 1) + "}", TestImages.noise(wh[0], wh[1], k));
                assertEquals(202, resp.status(), resp.text());
                ids.add(resp.json().path("id").asText());
            }
            int[] mostRunning = {0};
            long[] mostReserved = {0};
            List<String> over = new java.util.concurrent.CopyOnWriteArrayList<>();
            var done = new java.util.concurrent.atomic.AtomicBoolean();
            Thread watch = Thread.ofVirtual().start(() -> {
                while (!done.get()) {
                    JsonNode d = s.get("/v1/devices").json().path("devices").get(0);
                    mostRunning[0] = Math.max(mostRunning[0], d.path("running_jobs").size());
                    mostReserved[0] = Math.max(mostReserved[0], d.path("reserved_bytes").asLong());
                    if (d.path("reserved_bytes").asLong() > budget || d.path("running_jobs").size() > 4) over.add(d.toString());
                }
            });
            assertEquals(200, s.post("/v1/queue/resume").status());
            try {
                for (String id : ids) assertEquals("succeeded", s.await(id, Duration.ofSeconds(150)).path("state").asText(), s.job(id).toString());
            } finally {
                done.set(true);
                watch.join();
            }
            assertTrue(over.isEmpty(), "past the budget or the limit: " + over);
            JsonNode d = s.get("/v1/devices").json().path("devices").get(0);
            assertTrue(d.path("reserved_peak_bytes").asLong() <= budget, d.toString());
            assertEquals(0, d.path("reserved_bytes").asLong(), d.toString());
            assertTrue(mostRunning[0] >= 3, "jobs never ran 3 or more at once (most at once: " + mostRunning[0] + ")");
            String m = s.get("/metrics").text();
            assertEquals(0.0, sample(m, "headroom_out_of_memory_errors_total"), m);
            for (String rung : List.of("flush-cache", "evict", "halve-batch", "shrink-tile")) {
                assertEquals(0.0, sample(m, "headroom_memory_rungs_total{rung=\"" + rung + "\"}"), "rung " + rung + " taken");
            }
            System.out.printf("admission: 24 jobs, at most %d at once, %d of %d MiB reserved at most, peak %d MiB%n", mostRunning[0], mostReserved[0] >> 20,
                    budget >> 20, d.path("reserved_peak_bytes").asLong() >> 20);
        }
    }

    static double sample(String metrics, String name) {
        return metrics.lines().filter(l -> l.startsWith(name + " ")).mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1)))
                .findFirst().orElseThrow(() -> new AssertionError(name + " not in /metrics"));
    }
}
