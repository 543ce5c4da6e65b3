package dev.headroom.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.headroom.testing.Golden;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Three real server processes (CPU backend) share one real PostgreSQL and one results folder: 60
 * jobs submitted across them, one server killed with kill -9 mid-job. Every job succeeds exactly
 * once (counted from the database and from the results), the dead server's jobs finish on the
 * others after its lease ran out, there is one execution record per run and exactly one that
 * succeeded per job; every result is served by every server; the node registry shows the dead
 * one gone; a cancel sent to one server stops a job running on another; a job goes to the server
 * that has its model resident.
 */
class FleetTest {
    static final double LEASE_SECONDS = 4;

    @TempDir
    Path dir;

    static String[] options(PostgresFixture pg, Path shared, String node, String... more) {
        List<String> o = new ArrayList<>(List.of("--store", pg.url(), "--results", shared.toString(), "--node", node,
                "--lease", String.valueOf(LEASE_SECONDS), "--device", "cpu", "--vram-budget", "256MiB", "--cache", "0", "--max-concurrent", "2",
                "--model", "rrdb=" + Golden.dir().resolve("rrdbnet-x2.pth"), "--model", "srvgg=" + Golden.dir().resolve("srvgg-x4.pth")));
        o.addAll(List.of(more));
        return o.toArray(String[]::new);
    }

    static String owner(PostgresFixture pg, String id) throws Exception {
        try (Connection c = pg.connect(); var p = c.prepareStatement("SELECT owner FROM jobs WHERE id = ?")) {
            p.setString(1, id);
            try (ResultSet r = p.executeQuery()) {
                return r.next() ? r.getString(1) : null;
            }
        }
    }

    static List<String> residentOn(ServerProcess s, String node) {
        List<String> out = new ArrayList<>();
        for (JsonNode n : s.get("/v1/nodes").json().path("nodes")) {
            if (n.path("name").asText().equals(node)) n.path("models_resident").forEach(m -> out.add(m.asText()));
        }
        return out;
    }

    static List<String> nodesThatRan(PostgresFixture pg, String id) throws Exception {
        try (Connection c = pg.connect(); var p = c.prepareStatement("SELECT node FROM executions WHERE job_id = ? ORDER BY id")) {
            p.setString(1, id);
            List<String> out = new ArrayList<>();
            try (ResultSet r = p.executeQuery()) {
                while (r.next()) out.add(r.getString(1));
            }
            return out;
        }
    }

    static long count(PostgresFixture pg, String sql) throws Exception {
        try (Connection c = pg.connect(); ResultSet r = c.createStatement().executeQuery(sql)) {
            r.next();
            return r.getLong(1);
        }
    }

    @Test
    void sixtyJobsOnThreeServersSurviveKillNineExactlyOnce() throws Exception {
        try (PostgresFixture pg = PostgresFixture.startOrSkip()) {
            Path shared = dir.resolve("shared");
            Map<String, String> env = Map.of("PGPASSWORD", pg.password);
            List<ServerProcess> servers = new ArrayList<>();
            try {
                for (int i = 1; i <= 3; i++) servers.add(new ServerProcess(dir.resolve("n" + i), env, options(pg, shared, "n" + i)));
                // the queue is shared, so is its pause: all 60 are queued before any server claims one
                assertEquals(200, servers.get(2).post("/v1/queue/pause").status());
                List<String> ids = new ArrayList<>();
                Map<String, Integer> submittedTo = new HashMap<>();
                for (int k = 0; k < 60; k++) {
                    ServerProcess s = servers.get(k % 3);
                    var r = s.submit("{\"model\":\"rrdb\",\"priority\":" + (k % 3 - 1) + ",\"tile\":32}", TestImages.noise(48 + k % 5 * 8, 40, 1000 + k));
                    assertEquals(202, r.status(), r.text());
                    ids.add(r.json().path("id").asText());
                    submittedTo.put(ids.getLast(), k % 3);
                }
                assertEquals(60, count(pg, "SELECT COUNT(*) FROM jobs WHERE state = 'queued'"));
                assertEquals(200, servers.get(1).post("/v1/queue/resume").status());
                // kill -9 the first server once it runs jobs and a few are done
                ServerProcess victim = servers.getFirst();
                long until = System.nanoTime() + Duration.ofSeconds(120).toNanos();
                while (true) {
                    long done = count(pg, "SELECT COUNT(*) FROM jobs WHERE state = 'succeeded'");
                    long running = count(pg, "SELECT COUNT(*) FROM jobs WHERE state = 'running' AND owner LIKE 'n1/%'");
                    if (done >= 3 && running > 0) break;
                    assertTrue(System.nanoTime() < until, "jobs did not get going: " + done + " done, " + running + " running on n1; nodes: "
                            + victim.get("/v1/nodes").text());
                    Thread.sleep(10);
                }
                victim.kill();
                long killedAt = System.currentTimeMillis();

                ServerProcess a = servers.get(1), b = servers.get(2);
                for (String id : ids) {
                    JsonNode j = a.await(id, Duration.ofSeconds(180));
                    assertEquals("succeeded", j.path("state").asText(), j.toString());
                    assertTrue(j.path("attempts").asInt() <= 1, j.toString());
                }
                // from the database: each job succeeded once, one execution record per run, exactly one of them succeeded
                Set<String> lostJobs = new HashSet<>();
                try (Connection c = pg.connect()) {
                    try (ResultSet r = c.createStatement().executeQuery("SELECT state, COUNT(*) FROM jobs GROUP BY state")) {
                        r.next();
                        assertEquals("succeeded", r.getString(1));
                        assertEquals(60, r.getInt(2));
                        assertTrue(!r.next(), "jobs in another state");
                    }
                    try (ResultSet r = c.createStatement().executeQuery("SELECT job_id, COUNT(*) FILTER (WHERE outcome = 'succeeded'), "
                            + "COUNT(*) FILTER (WHERE outcome NOT IN ('succeeded', 'lost')), COUNT(*) FILTER (WHERE outcome = 'lost') FROM executions GROUP BY job_id")) {
                        int jobs = 0;
                        while (r.next()) {
                            jobs++;
                            assertEquals(1, r.getInt(2), "job " + r.getString(1) + " succeeded " + r.getInt(2) + " times");
                            assertEquals(0, r.getInt(3), "job " + r.getString(1) + " has runs neither succeeded nor lost");
                            if (r.getInt(4) > 0) lostJobs.add(r.getString(1));
                        }
                        assertEquals(60, jobs);
                    }
                    // runs match attempts: a job interrupted once ran twice
                    try (ResultSet r = c.createStatement().executeQuery("SELECT j.id, j.attempts, COUNT(e.id) FROM jobs j JOIN executions e ON e.job_id = j.id "
                            + "GROUP BY j.id, j.attempts")) {
                        while (r.next()) assertEquals(r.getInt(2) + 1, r.getInt(3), "job " + r.getString(1) + ": runs against attempts");
                    }
                    assertTrue(count(pg, "SELECT COUNT(*) FROM executions WHERE node = 'n1' AND outcome = 'lost'") > 0, "no job was running on the killed server");
                    // the dead server's jobs finished elsewhere, after its lease ran out
                    // (its leases were last renewed just before its last heartbeat, so none ran out before that heartbeat + the lease)
                    long lastBeat = count(pg, "SELECT heartbeat FROM nodes WHERE name = 'n1'");
                    long minWait = Long.MAX_VALUE, maxWait = 0;
                    try (ResultSet r = c.createStatement().executeQuery("SELECT l.job_id, l.node, s.node, s.started FROM executions l JOIN executions s "
                            + "ON s.job_id = l.job_id AND s.outcome = 'succeeded' WHERE l.outcome = 'lost'")) {
                        while (r.next()) {
                            if (!r.getString(2).equals("n1")) {
                                // a live server whose heartbeat came too late (a starved machine) lost its lease: it must have let the job go
                                ServerProcess late = servers.get(Integer.parseInt(r.getString(2).substring(1)) - 1);
                                assertTrue(late.log().contains("job " + r.getString(1) + " abandoned"), r.getString(2) + " lost " + r.getString(1)
                                        + " without abandoning it:\n" + late.log());
                                continue;
                            }
                            assertTrue(!r.getString(3).equals("n1"), "a lost job finished on the dead node");
                            assertTrue(r.getLong(4) >= lastBeat + LEASE_SECONDS * 1000 - 200, "job " + r.getString(1) + " was taken "
                                    + (r.getLong(4) - lastBeat) + " ms after the dead server's last heartbeat, before its lease ran out");
                            minWait = Math.min(minWait, r.getLong(4) - killedAt);
                            maxWait = Math.max(maxWait, r.getLong(4) - killedAt);
                        }
                    }
                    System.out.println("fleet: " + lostJobs.size() + " jobs of the killed server were taken over " + minWait + " to " + maxWait
                            + " ms after kill -9 (lease " + LEASE_SECONDS + " s)");
                }
                // from the results: one file per job in the shared folder, served by any server with its ETag
                try (var files = Files.list(shared.resolve("results"))) {
                    assertEquals(60, files.filter(f -> !f.getFileName().toString().startsWith(".")).count());
                }
                for (String id : ids) {
                    ServerProcess other = submittedTo.get(id) == 1 ? b : a;
                    var res = other.get("/v1/jobs/" + id + "/result");
                    assertEquals(200, res.status());
                    assertEquals("\"" + DataDir.sha256(shared.resolve("results").resolve(id)) + "\"", res.headers().firstValue("ETag").orElseThrow());
                }
                // the registry: three nodes, the killed one gone, the others alive
                JsonNode nodes = a.get("/v1/nodes").json().path("nodes");
                Map<String, Boolean> alive = new HashMap<>();
                nodes.forEach(n -> alive.put(n.path("name").asText(), n.path("alive").asBoolean()));
                assertEquals(Map.of("n1", false, "n2", true, "n3", true), alive);
                assertTrue(a.get("/metrics").text().contains("headroom_nodes{state=\"alive\"} 2"), "metrics show two live nodes");

                // the event stream of a job submitted to one server ends with the job, wherever it ran
                String small = a.submit("{\"model\":\"rrdb\",\"tile\":32}", TestImages.noise(40, 40, 8)).json().path("id").asText();
                String stream = a.get("/v1/jobs/" + small + "/events").text();
                assertTrue(stream.contains("event:succeeded") || stream.contains("event: succeeded"), stream);

                // a cancel sent to one server stops the job where it runs
                String big = a.submit("{\"model\":\"rrdb\",\"tile\":32}", TestImages.noise(400, 400, 7)).json().path("id").asText();
                a.awaitState(big, "running", Duration.ofSeconds(60));
                String runner = owner(pg, big);
                ServerProcess elsewhere = runner.startsWith("n2/") ? b : a;
                long t0 = System.nanoTime();
                assertEquals(200, elsewhere.delete("/v1/jobs/" + big).status());
                JsonNode j = elsewhere.await(big, Duration.ofSeconds(60));
                assertEquals("cancelled", j.path("state").asText(), j.toString());
                System.out.println("fleet: a cancel sent to another server stopped the job in " + (System.nanoTime() - t0) / 1_000_000 + " ms (heartbeat "
                        + LEASE_SECONDS / 3 + " s)");

                // placement: with srvgg resident only on n3, n2 leaves jobs for it to n3 (submitted through n3: a submission loads the model it plans with)
                assertEquals(200, b.post("/v1/models/srvgg/load").status());
                long seen = System.nanoTime() + Duration.ofSeconds(30).toNanos();
                while (!residentOn(a, "n3").contains("srvgg")) {
                    assertTrue(System.nanoTime() < seen, "n3's heartbeat never showed srvgg resident: " + a.get("/v1/nodes").text());
                    Thread.sleep(50);
                }
                Thread.sleep((long) (LEASE_SECONDS * 1000 / 3 * 1.2));   // and n2's next heartbeat has read it
                List<String> placed = new ArrayList<>();
                for (int k = 0; k < 2; k++) placed.add(b.submit("{\"model\":\"srvgg\"}", TestImages.noise(24, 24, 9 + k)).json().path("id").asText());
                for (String id : placed) {
                    assertEquals("succeeded", a.await(id, Duration.ofSeconds(60)).path("state").asText());
                    assertEquals(List.of("n3"), nodesThatRan(pg, id), "job " + id + " ran away from the node with its model resident");
                }
            } catch (AssertionError | RuntimeException e) {
                for (ServerProcess s : servers) System.out.println("--- " + s.data + "/serve.log:\n" + s.log());
                throw e;
            } finally {
                for (ServerProcess s : servers) s.close();
            }
        }
    }
}
