package dev.headroom.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.testing.Golden;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * 32 clients on loopback, each submitting a small job and polling it until it ends, again and
 * again for the full minute, bounded (-Dheadroom.loadSeconds=N for another length):
 * no job lost, no server error. Prints the p50/p99 latencies of submit and status and writes them
 * to target/serve-load.txt.
 */
class ServeLoadTest {
    @TempDir
    Path dir;

    @Test
    void thirtyTwoClientsLoseNothing() throws Exception {
        int seconds = Integer.getInteger("headroom.loadSeconds", 60), clients = 32;
        try (ServerProcess s = new ServerProcess(dir.resolve("data"), "--device", "cpu", "--vram-budget", "256MiB", "--max-concurrent", "2",
                "--model", "srvgg=" + Golden.dir().resolve("srvgg-x4.pth"))) {
            List<Long> submitNanos = new CopyOnWriteArrayList<>(), statusNanos = new CopyOnWriteArrayList<>();
            Map<String, Boolean> accepted = new ConcurrentHashMap<>();
            List<String> errors = new CopyOnWriteArrayList<>();
            AtomicInteger finished = new AtomicInteger();
            long end = System.nanoTime() + Duration.ofSeconds(seconds).toNanos();
            List<Thread> threads = new ArrayList<>();
            for (int c = 0; c < clients; c++) {
                int client = c;
                threads.add(Thread.ofVirtual().start(() -> {
                    Random r = new Random(client);
                    for (int n = 0; System.nanoTime() < end; n++) {
                        // one in four repeats an earlier image (a cache hit); the rest are new
                        byte[] img = TestImages.noise(12 + r.nextInt(12), 12 + r.nextInt(12), n % 4 == 3 ? client : client * 100_000L + n);
                        long t0 = System.nanoTime();
                        var resp = s.submit("{\"model\":\"srvgg\",\"priority\":" + (n % 3) + "}", img);
                        submitNanos.add(System.nanoTime() - t0);
                        if (resp.status() != 202) {
                            errors.add("submit " + resp.status() + " " + resp.text());
                            continue;
                        }
                        String id = resp.json().path("id").asText();
                        accepted.put(id, true);
                        while (true) {
                            long t1 = System.nanoTime();
                            var st = s.get("/v1/jobs/" + id);
                            statusNanos.add(System.nanoTime() - t1);
                            if (st.status() != 200) {
                                errors.add("status " + st.status() + " " + st.text());
                                break;
                            }
                            String state = st.json().path("state").asText();
                            if (state.equals("succeeded")) {
                                finished.incrementAndGet();
                                break;
                            }
                            if (!state.equals("queued") && !state.equals("running")) {
                                errors.add("job " + id + " " + st.text());
                                break;
                            }
                            if (System.nanoTime() > end + Duration.ofSeconds(120).toNanos()) {
                                errors.add("job " + id + " never finished");
                                break;
                            }
                            try {
                                Thread.sleep(50);
                            } catch (InterruptedException e) {
                                return;
                            }
                        }
                    }
                }));
            }
            for (Thread t : threads) t.join();
            if (!errors.isEmpty()) {
                // a job that never finished: say where the server's threads were
                Files.writeString(Path.of("target", "serve-load-failure.txt"), String.join("\n", errors) + "\n\n" + s.threadDump() + "\n\n" + s.log());
            }
            assertTrue(errors.isEmpty(), errors.size() + " errors, first: " + (errors.isEmpty() ? "" : errors.getFirst())
                    + " (the server's threads and log: target/serve-load-failure.txt)");
            // no job lost: every accepted id is in the store, succeeded, and listed once
            for (String id : accepted.keySet()) assertEquals("succeeded", s.job(id).path("state").asText());
            assertEquals(accepted.size(), finished.get());
            String m = s.get("/metrics").text();
            assertTrue(m.lines().noneMatch(l -> l.startsWith("headroom_jobs{state=\"failed\"}") && !l.endsWith(" 0.0")), m);
            String report = String.format("load: %d clients, %d s, %d jobs accepted and succeeded, 0 lost, 0 server errors; submit p50 %.1f ms p99 %.1f ms"
                            + " (%d requests); status p50 %.1f ms p99 %.1f ms (%d requests)%n", clients, seconds, accepted.size(),
                    pct(submitNanos, 50), pct(submitNanos, 99), submitNanos.size(), pct(statusNanos, 50), pct(statusNanos, 99), statusNanos.size());
            System.out.print(report);
            Files.writeString(Path.of("target", "serve-load.txt"), report);
        }
    }

    static double pct(List<Long> nanos, int p) {
        List<Long> l = new ArrayList<>(nanos);
        Collections.sort(l);
        return l.get(Math.min(l.size() - 1, (int) Math.ceil(p / 100.0 * l.size()) - 1)) / 1e6;
    }
}
