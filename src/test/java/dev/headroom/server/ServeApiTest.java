package dev.headroom.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.headroom.testing.Golden;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The API of a real {@code headroom serve} process on loopback (CPU backend, small budget, two
 * small seeded models): every route and error status, results against {@code headroom upscale},
 * the event stream's order, the queue's controls, and cancels racing with admission and running.
 */
class ServeApiTest {
    static final Duration LONG = Duration.ofSeconds(90);
    static final String BUDGET = "256MiB";

    @TempDir
    static Path dir;
    static ServerProcess server;
    static Path srvgg = Golden.dir().resolve("srvgg-x4.pth"), rrdb = Golden.dir().resolve("rrdbnet-x2.pth");

    @BeforeAll
    static void start() throws Exception {
        server = new ServerProcess(dir.resolve("data"), "--device", "cpu", "--vram-budget", BUDGET, "--max-upload", "1MiB", "--max-pixels", "4000000",
                "--cache", "64MiB", "--model", "srvgg=" + srvgg, "--model", "rrdb=" + rrdb);
    }

    @AfterAll
    static void stop() throws Exception {
        if (server == null) return;
        int code = server.stop();
        assertTrue(code == 0 || code == 143, "exit status " + code + " after SIGTERM\n" + server.log());
    }

    static String params(String model, int priority, String extra) {
        return "{\"task\":\"upscale\",\"model\":\"" + model + "\",\"priority\":" + priority + (extra == null ? "" : "," + extra) + "}";
    }

    static void assertProblem(ServerProcess.Response r, int status, String detailPart) {
        assertProblem(server, r, status, detailPart);
    }

    /** A problem+json of {@code status} with a one-line detail holding {@code detailPart}, after which {@code server} still answers. */
    static void assertProblem(ServerProcess server, ServerProcess.Response r, int status, String detailPart) {
        assertEquals(status, r.status(), r.text());
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("application/problem+json"), r.headers().toString());
        JsonNode p = r.json();
        assertEquals(status, p.path("status").asInt());
        String detail = p.path("detail").asText();
        assertTrue(detail.contains(detailPart), "detail '" + detail + "' lacks '" + detailPart + "'");
        assertFalse(detail.contains("\n") || r.text().contains("\tat "), "a stack trace or a second line in " + r.text());
        assertEquals(200, server.send("GET", "/healthz", HttpRequest.BodyPublishers.noBody(), Map.of(), false).status(), "server stopped answering");
    }

    @Test
    void everyErrorStatusIsAProblemAndTheServerStillAnswers() {
        byte[] img = TestImages.noise(40, 30, 1);
        assertProblem(server.submit(params("srvgg", 0, null), img, Map.of(), false), 401, "Authorization");
        assertProblem(server.send("GET", "/v1/jobs", HttpRequest.BodyPublishers.noBody(), Map.of("Authorization", "Bearer nope"), false), 401, "wrong");
        assertProblem(server.send("GET", "/metrics", HttpRequest.BodyPublishers.noBody(), Map.of(), false), 401, "Authorization");
        assertProblem(server.get("/v1/jobs/does-not-exist"), 404, "no job");
        assertProblem(server.get("/v1/jobs/does-not-exist/result"), 404, "no job");
        assertProblem(server.delete("/v1/jobs/does-not-exist"), 404, "no job");
        assertProblem(server.get("/v2/nothing"), 404, "no route");
        assertProblem(server.get("/assets/nope.js"), 404, "the assets are app.js, app.css, logo.svg");
        assertProblem(server.submit(params("srvgg", 0, null), "this is not an image".repeat(10).getBytes()), 422, "not a PNG or JPEG");
        assertProblem(server.submit(params("srvgg", 0, null), new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0}), 422, "damaged");
        byte[] big = new byte[(5 << 20) / 2];
        new java.util.Random(1).nextBytes(big);
        assertProblem(server.submit(params("srvgg", 0, null), big), 413, "--max-upload");
        assertProblem(server.submit(params("srvgg", 0, null), TestImages.bomb(30000, 30000)), 413, "--max-pixels");
        assertProblem(server.submit(params("nosuch", 0, null), img), 422, "not one this server knows");
        assertProblem(server.submit(params("srvgg", 0, "\"colour\":1"), img), 422, "unknown param");
        assertProblem(server.submit(params("srvgg", 0, "\"format\":\"gif\""), img), 422, "png, jpeg or webp");
        assertProblem(server.submit(params("srvgg", 0, "\"weights\":\"int3\""), img), 422, "use fp16, bf16, int8, fp8 or nf4");
        assertProblem(server.submit("{not json", img), 400, "not valid JSON");
        assertProblem(server.submit(params("srvgg", 0, "\"tile\":4096"), TestImages.bomb(4000, 1000)), 422, "cannot fit");
        assertProblem(server.send("POST", "/v1/jobs", HttpRequest.BodyPublishers.ofString("{}"), Map.of("Content-Type", "application/json"), true), 415,
                "the body has Content-Type application/json; send multipart");
        assertProblem(server.get("/v1/jobs?state=bogus"), 400, "state");
        assertProblem(server.get("/v1/jobs?limit=0"), 400, "limit");
        assertProblem(server.patch("/v1/jobs/does-not-exist", "{\"priority\":1}"), 404, "no job");
        assertProblem(server.post("/v1/models/nosuch/load"), 404, "not one this server knows");
        // the details carry the values sent
        assertProblem(server.get("/v1/jobs?limit=5000"), 400, "limit=5000");
        assertProblem(server.submit(params("srvgg", 0, null).replace("\"priority\":0", "\"priority\":\"high\""), img), 422, "priority \"high\"");
        assertProblem(server.submit(params("srvgg", 0, "\"tile\":3"), img), 422, "tile 3 is not");
        assertProblem(server.submit("{\"task\":\"upscale\",}", img), 400, "(line 1, column");
        assertProblem(server.submit(params("srvgg", 0, null), img, Map.of("Idempotency-Key", "k".repeat(201)), true), 400, "201 characters");
        // what Javalin and Jetty refuse themselves is a problem too, not their text or HTML page
        assertProblem(server.patch("/v1/jobs/does-not-exist", "{\"priority\":1,\"pad\":\"" + "x".repeat((1 << 20) + 10) + "\"}"), 413, "over 1.00 MiB");
        assertProblem(server.send("GET", "/v1/jobs", HttpRequest.BodyPublishers.noBody(), Map.of("X-Pad", "x".repeat(20_000)), true), 431, "over 8.00 KiB");
        assertProblem(server.raw("GET /v1/jobs/%zz HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " + server.token + "\r\nConnection: close\r\n\r\n"),
                400, "percent-encoding");
        assertProblem(server.raw("GET /v1/jobs HTTP/1.1\r\nHost: localhost\r\nBad Header\r\nConnection: close\r\n\r\n"), 400, "refused before any route");
        // nothing of the refused uploads is left behind
        assertEquals(0, server.get("/v1/jobs").json().path("jobs").size() - jobsAccepted(), "refused submissions left jobs");
    }

    private static int jobsAccepted() {
        return (int) java.util.stream.StreamSupport.stream(server.get("/v1/jobs?limit=1000").json().path("jobs").spliterator(), false).count();
    }

    @Test
    void resultsEqualTheCliAndRepeatsComeFromTheCache() throws Exception {
        for (var c : List.of(new Object[] {"srvgg", srvgg, TestImages.noise(72, 56, 7), "png"}, new Object[] {"rrdb", rrdb, TestImages.noise(90, 40, 8), "png"},
                new Object[] {"srvgg", srvgg, TestImages.noise(40, 40, 9), "jpeg"},
                // compact weights, on the same input as the first: a job of its own (not the first's cached result), the CLI's --weights bytes
                new Object[] {"srvgg", srvgg, TestImages.noise(72, 56, 7), "png", "int8"})) {
            String model = (String) c[0], format = (String) c[3], weights = c.length > 4 ? (String) c[4] : null;
            String extra = "\"format\":\"" + format + "\"" + (weights == null ? "" : ",\"weights\":\"" + weights + "\"");
            byte[] img = (byte[]) c[2];
            ServerProcess.Response r = server.submit(params(model, 0, extra), img);
            assertEquals(202, r.status(), r.text());
            String id = r.json().path("id").asText();
            assertEquals("/v1/jobs/" + id, r.headers().firstValue("Location").orElse(""));
            JsonNode done = server.await(id, LONG);
            assertEquals("succeeded", done.path("state").asText(), done.toString());
            assertFalse(done.path("cached").asBoolean());
            ServerProcess.Response res = server.get("/v1/jobs/" + id + "/result");
            assertEquals(200, res.status());
            String etag = res.headers().firstValue("ETag").orElseThrow();

            assertEquals(format.equals("jpeg") ? "image/jpeg" : "image/png", res.headers().firstValue("Content-Type").orElse(""));
            String w = weights == null ? "" : "-" + weights;
            Path in = dir.resolve(model + format + w + "-in.png"), out = dir.resolve(model + w + "-cli." + (format.equals("jpeg") ? "jpg" : "png"));
            Files.write(in, img);
            List<String> cli = new ArrayList<>(ServerProcess.java("upscale", in.toString(), "-o", out.toString(), "--device", "cpu", "--vram-budget", BUDGET,
                    "--model", c[1].toString(), "--quiet"));
            if (weights != null) cli.addAll(List.of("--weights", weights));
            Process p = new ProcessBuilder(cli).redirectErrorStream(true).start();
            String log = new String(p.getInputStream().readAllBytes());
            assertEquals(0, p.waitFor(), log);
            assertArrayEquals(Files.readAllBytes(out), res.body(), model + " " + extra + ": the server's result differs from headroom upscale's");

            // the same input, model and params again: answered from the cache at once, same bytes
            ServerProcess.Response again = server.submit(params(model, 3, extra), img);
            assertEquals(202, again.status());
            assertEquals("succeeded", again.json().path("state").asText());
            assertTrue(again.json().path("cached").asBoolean());
            ServerProcess.Response res2 = server.get("/v1/jobs/" + again.json().path("id").asText() + "/result");
            assertEquals(etag, res2.headers().firstValue("ETag").orElseThrow());
            assertArrayEquals(res.body(), res2.body());
            assertEquals(304, server.send("GET", "/v1/jobs/" + id + "/result", HttpRequest.BodyPublishers.noBody(), Map.of("If-None-Match", etag), true).status());
        }
        // finished jobs' sessions are kept for the next jobs (the later srvgg jobs above ran on one), never more than run at once
        JsonNode dev = server.get("/v1/devices").json().path("devices").get(0);
        int idle = dev.path("idle_sessions").asInt(-1);
        assertTrue(idle >= 1 && idle <= dev.path("max_running").asInt(), dev.toString());
        // an Idempotency-Key returns the first job for the same key
        byte[] img = TestImages.noise(33, 33, 9);
        String a = server.submit(params("srvgg", 0, null), img, Map.of("Idempotency-Key", "k-1"), true).json().path("id").asText();
        String b = server.submit(params("srvgg", 0, null), img, Map.of("Idempotency-Key", "k-1"), true).json().path("id").asText();
        String c = server.submit(params("srvgg", 0, null), img, Map.of("Idempotency-Key", "k-2"), true).json().path("id").asText();
        assertEquals(a, b);
        assertNotEquals(a, c);
        server.await(a, LONG);
        server.await(c, LONG);
        // a result whose file is gone (an operator's clean-up) is 410 with what to do, not a 500
        Files.delete(server.data.resolve("results").resolve(c));
        assertProblem(server.get("/v1/jobs/" + c + "/result"), 410, "is no longer on this server");
        String metrics = server.get("/metrics").text();
        assertTrue(metrics.contains("# TYPE headroom_cache_hits_total counter"), metrics);
        assertTrue(metrics.lines().anyMatch(l -> l.startsWith("headroom_cache_hits_total ") && Double.parseDouble(l.split(" ")[1]) >= 2), metrics);
    }

    @Test
    void eventsArriveInOrder() throws Exception {
        ServerProcess.Response r = server.submit(params("srvgg", 0, "\"tile\":32"), TestImages.noise(100, 70, 11));
        assertEquals(202, r.status(), r.text());
        String id = r.json().path("id").asText();
        List<String[]> events = events(id);   // {id, name, data}
        List<String> names = events.stream().map(e -> e[1]).toList();
        assertEquals("queued", names.getFirst(), names.toString());
        assertEquals("admitted", names.get(1), names.toString());
        assertEquals("succeeded", names.getLast(), names.toString());
        JsonNode end = ServerProcess.JSON.readTree(events.getLast()[2]);
        assertTrue(end.path("session").asText().matches("cpu#[0-9]+"), "the end event names the session the job ran on: " + end);
        assertTrue(end.path("phases_ms").path("upscale").isNumber(), end.toString());
        int tiles = r.json().path("progress").path("total").asInt();
        assertTrue(tiles > 4, "want several tiles, got " + tiles);
        assertEquals(tiles + 3, names.size(), names.toString());
        for (int k = 0; k < tiles; k++) {
            String[] e = events.get(2 + k);
            assertEquals("tile", e[1]);
            JsonNode d = ServerProcess.JSON.readTree(e[2]);
            assertEquals(k + 1, d.path("done").asInt());
            assertEquals(tiles, d.path("total").asInt());
        }
        for (int k = 0; k < events.size(); k++) assertEquals(String.valueOf(k + 1), events.get(k)[0]);
        // resuming after event 3 gives the rest
        assertEquals(events.size() - 3, events(id, "3").size());
        assertProblem(server.send("GET", "/v1/jobs/" + id + "/events", HttpRequest.BodyPublishers.noBody(), Map.of("Last-Event-ID", "three"), true), 400,
                "Last-Event-ID 'three' is not a number");
    }

    static List<String[]> events(String id) throws Exception {
        return events(id, null);
    }

    /** Reads a job's event stream to its end: {id, name, data} of each event. */
    static List<String[]> events(String id, String lastEventId) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(server.url + "/v1/jobs/" + id + "/events")).header("Authorization", "Bearer " + server.token)
                .timeout(LONG);
        if (lastEventId != null) b.header("Last-Event-ID", lastEventId);
        HttpResponse<java.io.InputStream> r = server.http.send(b.build(), HttpResponse.BodyHandlers.ofInputStream());
        assertEquals(200, r.statusCode());
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("text/event-stream"));
        List<String[]> out = new ArrayList<>();
        try (BufferedReader in = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8))) {
            String eid = null, name = null, data = null;
            for (String line; (line = in.readLine()) != null; ) {
                if (line.startsWith("id:")) eid = line.substring(3).strip();
                else if (line.startsWith("event:")) name = line.substring(6).strip();
                else if (line.startsWith("data:")) data = line.substring(5).strip();
                else if (line.isEmpty() && name != null) {
                    out.add(new String[] {eid, name, data});
                    eid = name = data = null;
                }
            }
        }
        return out;
    }

    @Test
    void pauseReorderAndPages() throws Exception {
        assertEquals(200, server.post("/v1/queue/pause").status());
        try {
            byte[] img = TestImages.noise(24, 24, 20);
            String a = server.submit(params("rrdb", 0, "\"tile\":32"), img).json().path("id").asText();
            String b = server.submit(params("rrdb", 0, "\"tile\":32"), TestImages.noise(24, 24, 21)).json().path("id").asText();
            JsonNode c = server.submit(params("rrdb", 5, "\"tile\":32"), TestImages.noise(24, 24, 22)).json();
            assertEquals(0, c.path("position").asInt(), c.toString());
            Thread.sleep(600);   // paused: nothing is admitted
            assertEquals("queued", server.job(a).path("state").asText());
            assertProblem(server.get("/v1/jobs/" + a + "/result"), 409, "queued");
            JsonNode patched = server.patch("/v1/jobs/" + a, "{\"priority\":10}").json();
            assertEquals(10, patched.path("priority").asInt());
            assertEquals(0, patched.path("position").asInt());
            assertEquals(2, server.job(b).path("position").asInt());
            assertProblem(server.patch("/v1/jobs/" + a, "{\"priority\":\"high\"}"), 422, "integer");
            // pages of the queued jobs
            JsonNode p1 = server.get("/v1/jobs?state=queued&limit=2").json();
            assertEquals(2, p1.path("jobs").size());
            JsonNode p2 = server.get("/v1/jobs?state=queued&limit=2&after=" + p1.path("next").asText()).json();
            assertTrue(p2.path("jobs").size() >= 1);
            Set<String> seen = new java.util.HashSet<>();
            for (JsonNode j : p1.path("jobs")) seen.add(j.path("id").asText());
            for (JsonNode j : p2.path("jobs")) assertTrue(seen.add(j.path("id").asText()), "page 2 repeats a job");
            assertTrue(seen.containsAll(List.of(a, b, c.path("id").asText())));
            server.post("/v1/queue/resume");
            JsonNode ja = server.await(a, LONG), jb = server.await(b, LONG), jc = server.await(c.path("id").asText(), LONG);
            for (JsonNode j : List.of(ja, jb, jc)) assertEquals("succeeded", j.path("state").asText());
            // b has the lowest priority: it starts last
            assertTrue(jb.path("started_at").asText().compareTo(ja.path("started_at").asText()) >= 0);
            assertTrue(jb.path("started_at").asText().compareTo(jc.path("started_at").asText()) >= 0);
            assertProblem(server.patch("/v1/jobs/" + a, "{\"priority\":1}"), 409, "only a queued job");
        } finally {
            server.post("/v1/queue/resume");
        }
    }

    @Test
    void cancelsRacingAdmissionAndRunningLeaveTheLedgerAtBaseline() throws Exception {
        // racing admission: cancel right after submitting, from another thread as well
        List<String> ids = new ArrayList<>();
        for (int k = 0; k < 8; k++) {
            String id = server.submit(params("srvgg", 0, null), TestImages.noise(30 + k, 30, 30 + k)).json().path("id").asText();
            Thread t = Thread.ofVirtual().start(() -> server.delete("/v1/jobs/" + id));
            assertEquals(200, server.delete("/v1/jobs/" + id).status());
            t.join();
            ids.add(id);
        }
        for (String id : ids) {
            JsonNode j = server.await(id, LONG);
            String s = j.path("state").asText();
            assertTrue(s.equals("cancelled") || s.equals("succeeded"), j.toString());
            assertEquals(s.equals("succeeded") ? 200 : 409, server.get("/v1/jobs/" + id + "/result").status());
        }
        // a running job stops at its next tile
        String id = server.submit(params("rrdb", 0, "\"tile\":32"), TestImages.noise(300, 300, 40)).json().path("id").asText();
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        JsonNode j;
        while ((j = server.job(id)).path("progress").path("done").asInt() < 1) {
            assertTrue(System.nanoTime() < until, "job never made progress: " + j);
            Thread.sleep(10);
        }
        assertEquals("running", j.path("state").asText());
        assertProblem(server.post("/v1/models/rrdb/unload"), 409, "in use by 1 job on cpu");
        assertTrue(residentBytes("rrdb") > 0, "a refused unload leaves the running job's weights alone");
        assertEquals(200, server.delete("/v1/jobs/" + id).status());
        assertEquals(200, server.delete("/v1/jobs/" + id).status(), "cancel is idempotent");
        JsonNode end = server.await(id, Duration.ofSeconds(30));
        assertEquals("cancelled", end.path("state").asText(), end.toString());
        assertTrue(end.path("progress").path("done").asInt() < end.path("progress").path("total").asInt(), end.toString());
        // the ledger is back at its baseline: nothing reserved, nothing live
        JsonNode dev = server.get("/v1/devices").json().path("devices").get(0);
        assertEquals(0, dev.path("reserved_bytes").asLong(), dev.toString());
        assertEquals(0, dev.path("running_jobs").size(), dev.toString());
        // the job's activations and its session's workspace are gone; the model's weights stay resident, shared
        assertEquals(0, dev.path("bytes_by_category").path("activations").asLong(), dev.toString());
        assertEquals(0, dev.path("bytes_by_category").path("workspace").asLong(), dev.toString());
        assertEquals(200, server.delete("/v1/jobs/" + id).status(), "cancelling a cancelled job is idempotent");
    }

    /** Bytes of {@code model}'s weights on the device, from GET /v1/models. */
    static long residentBytes(String model) {
        long b = 0;
        for (JsonNode m : server.get("/v1/models").json().path("models")) {
            if (!m.path("name").asText().equals(model)) continue;
            for (JsonNode r : m.path("resident")) if (r.path("where").asText().equals("device")) b += r.path("device_bytes").asLong();
        }
        return b;
    }

    /** A model the server cannot load (the operator's file, or too large for the budget) is the client's 422 with why, not a 500 that names a class. */
    @Test
    void aModelThatCannotBeLoadedIsRefusedWithWhy() throws Exception {
        Path bad = Files.writeString(dir.resolve("bad.pth"), "not a model");
        try (ServerProcess s = new ServerProcess(dir.resolve("data-small"), "--device", "cpu", "--vram-budget", "16MiB", "--model", "bad=" + bad,
                "--model", "rrdb=" + Golden.dir().resolve("rrdbnet-x4.pth"))) {
            assertProblem(s, s.post("/v1/models/bad/load"), 422, "model 'bad' cannot be loaded on this server (bad.pth: not a model file");
            assertProblem(s, s.post("/v1/models/rrdb/load"), 422, "model 'rrdb' cannot be loaded on cpu: ");
            assertProblem(s, s.post("/v1/models/rrdb/load"), 422, "bytes");
            s.stop();
        }
    }

    @Test
    void healthModelsDevicesAndMetrics() {
        assertEquals(200, server.send("GET", "/healthz", HttpRequest.BodyPublishers.noBody(), Map.of(), false).status());
        assertEquals(200, server.send("GET", "/readyz", HttpRequest.BodyPublishers.noBody(), Map.of(), false).status());
        JsonNode models = server.get("/v1/models").json().path("models");
        List<String> names = new ArrayList<>();
        models.forEach(m -> names.add(m.path("name").asText()));
        assertTrue(names.containsAll(List.of("default", "srvgg", "rrdb")), names.toString());
        assertTrue(server.post("/v1/models/rrdb/load").json().path("loaded").asBoolean());
        long weights = residentBytes("rrdb");
        assertTrue(weights > 0, "load puts the weights on the device");
        JsonNode unloaded = server.post("/v1/models/rrdb/unload").json();
        assertFalse(unloaded.path("loaded").asBoolean());
        assertEquals(weights, unloaded.path("freed_device_bytes").asLong(), unloaded.toString());
        assertEquals(0, residentBytes("rrdb"), "unload frees the device at once");
        assertEquals(0, server.post("/v1/models/rrdb/unload").json().path("freed_device_bytes").asLong(), "a second unload frees nothing");
        JsonNode dev = server.get("/v1/devices").json().path("devices").get(0);
        assertEquals(256L << 20, dev.path("budget_bytes").asLong());
        assertEquals("cpu", dev.path("kind").asText());
        String m = server.get("/metrics").text();
        for (String family : List.of("headroom_jobs", "headroom_queue_depth", "headroom_queue_oldest_wait_seconds", "headroom_job_duration_seconds",
                "headroom_admission_wait_seconds", "headroom_memory_rungs_total", "headroom_model_loads_total", "headroom_model_evictions_total",
                "headroom_cache_hits_total", "headroom_out_of_memory_errors_total",
                "headroom_device_memory_bytes", "headroom_device_pressure_level", "headroom_device_finishing_jobs", "headroom_device_allocator_events_total",
                // the JVM's own, which scripts/serve/gpu-throughput reads around each server's run
                "jvm_gc_collection_seconds", "jvm_memory_used_bytes", "process_cpu_seconds_total", "jvm_threads_current")) {
            assertTrue(m.contains("# TYPE " + family + " "), family + " missing from /metrics");
        }
        // the jobs above made the device's allocator back segments with the driver, and the counter says so
        var backed = java.util.regex.Pattern.compile("headroom_device_allocator_events_total\\{device=\"[^\"]+\",event=\"driver_allocations\"} ([0-9.eE+]+)").matcher(m);
        assertTrue(backed.find() && Double.parseDouble(backed.group(1)) > 0, "driver allocations counted: " + m.lines().filter(l -> l.contains("allocator")).toList());
        // every metric the shipped alert rules use is one the server exports
        var used = java.util.regex.Pattern.compile("headroom_[a-z_]+").matcher(readAlerts());
        int count = 0;
        while (used.find()) {
            String n = used.group();
            assertTrue(m.lines().anyMatch(l -> l.startsWith(n + "{") || l.startsWith(n + " ")), "alerts.yml uses " + n + ", which /metrics lacks");
            count++;
        }
        assertTrue(count >= 5, "alerts.yml names only " + count + " metrics");
    }

    @Test
    void submitAndJobsCommandsGoThroughTheApi() throws Exception {
        Path in = dir.resolve("cmd-in.png"), out = dir.resolve("cmd-out.png");
        Files.write(in, TestImages.noise(50, 40, 60));
        Path token = server.data.resolve("token");
        Process p = new ProcessBuilder(ServerProcess.java("submit", in.toString(), "--server", server.url, "--token", token.toString(), "--model", "srvgg",
                "--priority", "2", "--wait", "-o", out.toString())).redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes());
        assertEquals(0, p.waitFor(), log);
        String first = log;
        String id = log.lines().filter(l -> l.matches("[0-9a-f-]{36} .*")).findFirst().orElseThrow(() -> new AssertionError(first)).split(" ")[0];
        JsonNode j = server.job(id);
        assertEquals("succeeded", j.path("state").asText());
        assertEquals(2, j.path("priority").asInt());
        assertArrayEquals(server.get("/v1/jobs/" + id + "/result").body(), Files.readAllBytes(out));
        p = new ProcessBuilder(ServerProcess.java("jobs", "show", id, "--server", server.url, "--token", token.toString())).redirectErrorStream(true).start();
        log = new String(p.getInputStream().readAllBytes());
        assertEquals(0, p.waitFor(), log);
        assertTrue(log.contains(id + " succeeded"), log);
        p = new ProcessBuilder(ServerProcess.java("jobs", "cancel", "no-such-job", "--server", server.url, "--token", token.toString()))
                .redirectErrorStream(true).start();
        log = new String(p.getInputStream().readAllBytes());
        assertEquals(2, p.waitFor(), log);
        assertTrue(log.contains("404") && log.contains("no job"), log);
    }

    static String readAlerts() {
        try {
            return Files.readString(Path.of("scripts", "serve", "alerts.yml"));
        } catch (java.io.IOException e) {
            throw new AssertionError("scripts/serve/alerts.yml: " + e);
        }
    }
}
