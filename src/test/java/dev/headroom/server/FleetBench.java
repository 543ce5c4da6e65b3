package dev.headroom.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.testing.Golden;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The fleet's numbers for the note, on a real PostgreSQL (not part of ./test: run it with
 * {@code scripts/serve/fleet-bench}, which sets -Dheadroom.fleetBench=true):
 * <ul>
 *   <li>the queue itself: three stores (as three servers), two claimers each, claim and finish
 *       trivial jobs through one database, in jobs per second;</li>
 *   <li>end to end: three server processes, 16x16 images through the compact SRVGG model,
 *       submitted by 12 clients across the servers, in jobs per second from the first submission to
 *       the last success;</li>
 *   <li>takeover: how long a job of a server killed with kill -9 waits before another server takes
 *       it, for two lease lengths.</li>
 * </ul>
 * Results go to stdout and target/fleet-bench.txt.
 */
class FleetBench {
    @TempDir
    Path dir;

    private final List<String> lines = new ArrayList<>();

    private void report(String s) {
        System.out.println("fleet-bench: " + s);
        lines.add(s);
    }

    @Test
    void fleetNumbers() throws Exception {
        String which = System.getProperty("headroom.fleetBench", "");
        Assumptions.assumeTrue(which.equals("true") || which.equals("queue"), "a benchmark: run scripts/serve/fleet-bench");
        try (PostgresFixture pg = PostgresFixture.startOrSkip()) {
            queueOnly(pg, 6000);
            if (which.equals("queue")) return;
            endToEnd(pg, 300);
            for (double lease : new double[] {3, 10}) takeover(pg, lease);
        } finally {
            Files.write(Path.of("target", "fleet-bench.txt"), lines);
        }
    }

    private static Job trivial(String id, long now) {
        return new Job(id, 0, JobState.queued, 0, "m", "{}", "h", 8, 8, 1000, 0, 8, 1, 0, null, null, false, null, 0, 0, 1, null, false, null, 0, now, 0, 0);
    }

    private void queueOnly(PostgresFixture pg, int n) throws Exception {
        List<PostgresJobStore> stores = new ArrayList<>();
        for (int i = 0; i < 3; i++) stores.add(new PostgresJobStore(PostgresTarget.parse(pg.url()), pg.password));
        try {
            long now = System.currentTimeMillis();
            for (int i = 0; i < n; i++) stores.getFirst().insert(trivial("q" + i, now));
            AtomicInteger done = new AtomicInteger();
            List<Thread> ts = new ArrayList<>();
            long t0 = System.nanoTime();
            for (PostgresJobStore s : stores) {
                for (int t = 0; t < 2; t++) {
                    JobStore.Owner o = new JobStore.Owner("bench", UUID.randomUUID().toString());
                    ts.add(Thread.ofPlatform().start(() -> {
                        while (true) {
                            Optional<Job> j = s.claimNext(o, 30_000, System.currentTimeMillis(), q -> Optional.of(q.getFirst().id()));
                            if (j.isEmpty()) {
                                if (s.counts().get(JobState.queued) == 0) return;
                                continue;
                            }
                            s.finish(j.get().id(), o, JobState.succeeded, null, "r", 1, System.currentTimeMillis());
                            done.incrementAndGet();
                        }
                    }));
                }
            }
            for (Thread t : ts) t.join();
            double secs = (System.nanoTime() - t0) / 1e9;
            assertEquals(n, done.get());
            report(String.format("queue only: %d trivial jobs claimed (SKIP LOCKED, window %d) and finished by 3 stores x 2 claimers in %.2f s: %.0f jobs/s",
                    n, PostgresJobStore.WINDOW, secs, n / secs));
        } finally {
            for (PostgresJobStore s : stores) s.close();
        }
    }

    private String[] options(PostgresFixture pg, String node, double lease) {
        return new String[] {"--store", pg.url(), "--results", dir.resolve("shared").toString(), "--node", node, "--lease", String.valueOf(lease),
                "--device", "cpu", "--vram-budget", "256MiB", "--cache", "0", "--max-concurrent", "2",
                "--model", "srvgg=" + Golden.dir().resolve("srvgg-x4.pth"), "--model", "rrdb=" + Golden.dir().resolve("rrdbnet-x2.pth")};
    }

    private void endToEnd(PostgresFixture pg, int n) throws Exception {
        Map<String, String> env = Map.of("PGPASSWORD", pg.password);
        List<ServerProcess> servers = new ArrayList<>();
        try {
            for (int i = 1; i <= 3; i++) servers.add(new ServerProcess(dir.resolve("e" + i), env, options(pg, "e" + i, 10)));
            // warm up: the model loaded on every server
            for (ServerProcess s : servers) s.await(s.submit("{\"model\":\"srvgg\"}", TestImages.noise(16, 16, 1)).json().path("id").asText(), Duration.ofSeconds(60));
            byte[] img = TestImages.noise(16, 16, 2);
            ConcurrentLinkedQueue<String> ids = new ConcurrentLinkedQueue<>();
            AtomicInteger next = new AtomicInteger();
            long t0 = System.nanoTime();
            List<Thread> clients = new ArrayList<>();
            for (int c = 0; c < 12; c++) clients.add(Thread.ofPlatform().start(() -> {
                for (int k; (k = next.getAndIncrement()) < n; ) {
                    var r = servers.get(k % 3).submit("{\"model\":\"srvgg\"}", img);
                    assertEquals(202, r.status(), r.text());
                    ids.add(r.json().path("id").asText());
                }
            }));
            for (Thread t : clients) t.join();
            double submitted = (System.nanoTime() - t0) / 1e9;
            for (String id : ids) assertEquals("succeeded", servers.get(0).await(id, Duration.ofSeconds(300)).path("state").asText());
            double secs = (System.nanoTime() - t0) / 1e9;
            report(String.format("end to end: %d jobs (16x16, srvgg x4, CPU) from 12 clients across 3 servers (2 jobs at a time each): all submitted in %.2f s, "
                    + "all succeeded after %.2f s: %.1f jobs/s; %d cores on this machine", n, submitted, secs, n / secs, Runtime.getRuntime().availableProcessors()));
        } finally {
            for (ServerProcess s : servers) s.close();
        }
    }

    private void takeover(PostgresFixture pg, double lease) throws Exception {
        Map<String, String> env = Map.of("PGPASSWORD", pg.password);
        try (ServerProcess victim = new ServerProcess(dir.resolve("v" + lease), env, options(pg, "victim-" + lease, lease))) {
            String id = victim.submit("{\"model\":\"rrdb\",\"tile\":32}", TestImages.noise(640, 640, 3)).json().path("id").asText();
            victim.awaitState(id, "running", Duration.ofSeconds(60));
            try (ServerProcess heir = new ServerProcess(dir.resolve("h" + lease), env, options(pg, "heir-" + lease, lease))) {
                assertTrue(FleetTest.owner(pg, id).startsWith("victim-"));
                victim.kill();
                long killed = System.currentTimeMillis();
                long until = System.nanoTime() + Duration.ofSeconds((long) (lease * 3 + 30)).toNanos();
                while (FleetTest.count(pg, "SELECT COUNT(*) FROM executions WHERE job_id = '" + id + "' AND node LIKE 'heir-%'") == 0) {
                    assertTrue(System.nanoTime() < until, "the heir never took the job");
                    Thread.sleep(10);
                }
                long taken = FleetTest.count(pg, "SELECT started FROM executions WHERE job_id = '" + id + "' AND node LIKE 'heir-%'");
                report(String.format("takeover: lease %.0f s (heartbeat %.1f s): the killed server's job was claimed by another server %d ms after kill -9",
                        lease, lease / 3, taken - killed));
                heir.delete("/v1/jobs/" + id);
            }
        }
    }
}
