package dev.headroom.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.headroom.testing.Golden;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two servers lose their database (PostgreSQL stopped, then started again): while it is away they
 * claim nothing and stay up; a short outage leaves running jobs with their leases, a long one
 * (past the lease) makes the server abandon its job before anyone else may take it, and the job
 * runs again elsewhere once the database is back. Either way every job succeeds exactly once.
 */
class FleetPartitionTest {
    static final double LEASE_SECONDS = 6;

    @TempDir
    Path dir;

    static String[] options(PostgresFixture pg, Path shared, String node) {
        return new String[] {"--store", pg.url(), "--results", shared.toString(), "--node", node, "--lease", String.valueOf(LEASE_SECONDS),
                "--device", "cpu", "--vram-budget", "256MiB", "--cache", "0", "--max-concurrent", "1",
                "--model", "rrdb=" + Golden.dir().resolve("rrdbnet-x2.pth")};
    }

    @Test
    void aLostDatabaseStopsClaimingAndLosesOrDuplicatesNothing() throws Exception {
        try (PostgresFixture pg = PostgresFixture.startOrSkip()) {
            Path shared = dir.resolve("shared");
            Map<String, String> env = Map.of("PGPASSWORD", pg.password);
            List<ServerProcess> servers = new ArrayList<>();
            try {
                for (int i = 1; i <= 2; i++) servers.add(new ServerProcess(dir.resolve("n" + i), env, options(pg, shared, "n" + i)));
                ServerProcess a = servers.get(0), b = servers.get(1);

                // 1. a short outage, while both servers run jobs
                assertEquals(200, a.post("/v1/queue/pause").status());
                List<String> ids = new ArrayList<>();
                for (int k = 0; k < 8; k++) {
                    var r = servers.get(k % 2).submit("{\"model\":\"rrdb\",\"tile\":32}", TestImages.noise(96, 64, 2000 + k));
                    assertEquals(202, r.status(), r.text());
                    ids.add(r.json().path("id").asText());
                }
                assertEquals(200, b.post("/v1/queue/resume").status());
                awaitCount(pg, "SELECT COUNT(*) FROM jobs WHERE state = 'running'", 2);
                pg.stop();
                Thread.sleep(1500);
                for (ServerProcess s : servers) {
                    assertTrue(s.process.isAlive(), "a server died with its database");
                    assertEquals(200, s.send("GET", "/healthz", java.net.http.HttpRequest.BodyPublishers.noBody(), Map.of(), false).status());
                }
                pg.start();
                for (String id : ids) assertEquals("succeeded", a.await(id, Duration.ofSeconds(180)).path("state").asText());
                for (ServerProcess s : servers) {
                    assertTrue(s.log().contains("job store is unreachable"), s.log());
                    assertTrue(s.log().contains("answers again"), s.log());
                }

                // 2. an outage longer than the lease, while one job runs: its server abandons it, and it runs again once
                String big = b.submit("{\"model\":\"rrdb\",\"tile\":32}", TestImages.noise(320, 320, 7)).json().path("id").asText();
                ids.add(big);
                b.awaitState(big, "running", Duration.ofSeconds(60));
                String owner = FleetTest.owner(pg, big);
                ServerProcess runner = owner.startsWith("n1/") ? a : b;
                pg.stop();
                long until = System.nanoTime() + Duration.ofSeconds(60).toNanos();
                while (!runner.log().contains("job " + big + " abandoned")) {
                    assertTrue(System.nanoTime() < until, "the job was not abandoned after its lease ran out: " + runner.log());
                    Thread.sleep(100);
                }
                pg.start();
                JsonNode j = a.await(big, Duration.ofSeconds(180));
                assertEquals("succeeded", j.path("state").asText(), j.toString());
                assertEquals(1, j.path("attempts").asInt(), j.toString());

                // from the database: every job succeeded once; runs match attempts; the abandoned run was recorded lost
                try (Connection c = pg.connect()) {
                    assertEquals(ids.size(), FleetTest.count(pg, "SELECT COUNT(*) FROM jobs WHERE state = 'succeeded'"));
                    assertEquals(ids.size(), FleetTest.count(pg, "SELECT COUNT(*) FROM executions WHERE outcome = 'succeeded'"));
                    assertEquals(ids.size(), FleetTest.count(pg, "SELECT COUNT(DISTINCT job_id) FROM executions WHERE outcome = 'succeeded'"));
                    try (ResultSet r = c.createStatement().executeQuery("SELECT j.id, j.attempts, COUNT(e.id), COUNT(e.id) FILTER (WHERE e.outcome = 'lost') "
                            + "FROM jobs j JOIN executions e ON e.job_id = j.id GROUP BY j.id, j.attempts")) {
                        while (r.next()) {
                            assertEquals(r.getInt(2) + 1, r.getInt(3), "job " + r.getString(1) + ": runs against attempts");
                            assertEquals(r.getInt(2), r.getInt(4), "job " + r.getString(1) + ": lost runs against attempts");
                        }
                    }
                }
            } catch (AssertionError | RuntimeException e) {
                for (ServerProcess s : servers) System.out.println("--- " + s.data + "/serve.log:\n" + s.log());
                throw e;
            } finally {
                for (ServerProcess s : servers) s.close();
            }
        }
    }

    static void awaitCount(PostgresFixture pg, String sql, long atLeast) throws Exception {
        long until = System.nanoTime() + Duration.ofSeconds(120).toNanos();
        while (FleetTest.count(pg, sql) < atLeast) {
            assertTrue(System.nanoTime() < until, sql + " stayed below " + atLeast);
            Thread.sleep(20);
        }
    }
}
