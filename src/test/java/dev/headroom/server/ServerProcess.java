package dev.headroom.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code headroom serve} as a real process on loopback (port 0: the system picks a free one), with
 * a small HTTP client for tests. The test stops it: {@link #kill} is kill -9, {@link #stop} SIGTERM.
 */
final class ServerProcess implements AutoCloseable {
    static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern READY = Pattern.compile("headroom serve: (http://\\S+) \\(token: (.+)\\)");

    final Path data;
    final Process process;
    final String url;
    final String token;
    final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

    record Response(int status, byte[] body, java.net.http.HttpHeaders headers) {
        JsonNode json() {
            try {
                return JSON.readTree(body);
            } catch (IOException e) {
                throw new AssertionError("not JSON (" + status + "): " + text(), e);
            }
        }

        String text() {
            return new String(body, StandardCharsets.UTF_8);
        }
    }

    static List<String> java(String... args) {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx1g",
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                "dev.headroom.cli.Main"));
        cmd.addAll(List.of(args));
        return cmd;
    }

    ServerProcess(Path data, String... options) throws IOException {
        this(data, Map.of(), options);
    }

    /** With extra environment variables (PGPASSWORD for a fleet's store). */
    ServerProcess(Path data, Map<String, String> env, String... options) throws IOException {
        this.data = data;
        Files.createDirectories(data);
        List<String> cmd = java("serve", "--port", "0", "--data", data.toString());
        cmd.addAll(List.of(options));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.appendTo(data.resolve("serve.log").toFile()));
        pb.environment().putAll(env);
        process = pb.start();
        BufferedReader out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
        String line = out.readLine();
        Matcher m = line == null ? null : READY.matcher(line);
        if (m == null || !m.matches()) {
            process.destroyForcibly();
            throw new IllegalStateException("server did not start: " + line + "\n" + Files.readString(data.resolve("serve.log")));
        }
        url = m.group(1);
        token = Files.readString(Path.of(m.group(2))).strip();
        Thread.ofVirtual().start(() -> {
            // the rest of stdout (thread dumps, see threadDump) into DATA/serve.out
            try (var w = Files.newBufferedWriter(data.resolve("serve.out"))) {
                out.transferTo(w);
            } catch (IOException ignored) {
                // the process ended
            }
        });
    }

    Response send(String method, String path, HttpRequest.BodyPublisher body, Map<String, String> headers, boolean auth) {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url + path)).timeout(Duration.ofSeconds(60)).method(method, body);
        if (auth) b.header("Authorization", "Bearer " + token);
        headers.forEach(b::header);
        try {
            HttpResponse<byte[]> r = http.send(b.build(), HttpResponse.BodyHandlers.ofByteArray());
            return new Response(r.statusCode(), r.body(), r.headers());
        } catch (IOException | InterruptedException e) {
            throw new AssertionError(method + " " + path + ": " + e, e);
        }
    }

    /** Sends {@code head} as it is (a request the HTTP client refuses to make: ask for Connection: close) and reads the answer to its end. */
    Response raw(String head) {
        URI u = URI.create(url);
        try (java.net.Socket s = new java.net.Socket(u.getHost(), u.getPort())) {
            s.setSoTimeout(30_000);
            s.getOutputStream().write(head.getBytes(StandardCharsets.ISO_8859_1));
            byte[] all = s.getInputStream().readAllBytes();
            String text = new String(all, StandardCharsets.ISO_8859_1);
            int end = text.indexOf("\r\n\r\n");
            if (end < 0) throw new AssertionError("no complete answer to " + head.lines().findFirst().orElse("") + ": " + text);
            String[] lines = text.substring(0, end).split("\r\n");
            Map<String, List<String>> h = new java.util.TreeMap<>(String.CASE_INSENSITIVE_ORDER);
            for (int i = 1; i < lines.length; i++) {
                int c = lines[i].indexOf(':');
                h.computeIfAbsent(lines[i].substring(0, c).strip(), k -> new ArrayList<>()).add(lines[i].substring(c + 1).strip());
            }
            return new Response(Integer.parseInt(lines[0].split(" ")[1]), java.util.Arrays.copyOfRange(all, end + 4, all.length),
                    java.net.http.HttpHeaders.of(h, (a, b) -> true));
        } catch (IOException e) {
            throw new AssertionError("raw " + head.lines().findFirst().orElse("") + ": " + e, e);
        }
    }

    Response get(String path) {
        return send("GET", path, HttpRequest.BodyPublishers.noBody(), Map.of(), true);
    }

    Response post(String path) {
        return send("POST", path, HttpRequest.BodyPublishers.noBody(), Map.of(), true);
    }

    Response delete(String path) {
        return send("DELETE", path, HttpRequest.BodyPublishers.noBody(), Map.of(), true);
    }

    Response patch(String path, String json) {
        return send("PATCH", path, HttpRequest.BodyPublishers.ofString(json), Map.of("Content-Type", "application/json"), true);
    }

    /** POST /v1/jobs with a multipart body of params and image. */
    Response submit(String params, byte[] image, Map<String, String> headers, boolean auth) {
        String boundary = UUID.randomUUID().toString();
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        b.writeBytes(("--" + boundary + "\r\nContent-Disposition: form-data; name=\"params\"\r\nContent-Type: application/json\r\n\r\n" + params
                + "\r\n").getBytes(StandardCharsets.UTF_8));
        b.writeBytes(("--" + boundary + "\r\nContent-Disposition: form-data; name=\"image\"; filename=\"in.png\"\r\nContent-Type: image/png\r\n\r\n")
                .getBytes(StandardCharsets.UTF_8));
        b.writeBytes(image);
        b.writeBytes(("\r\n--" + boundary + "--\r\n").getBytes(StandardCharsets.UTF_8));
        Map<String, String> h = new java.util.HashMap<>(headers);
        h.put("Content-Type", "multipart/form-data; boundary=" + boundary);
        return send("POST", "/v1/jobs", HttpRequest.BodyPublishers.ofByteArray(b.toByteArray()), h, auth);
    }

    Response submit(String params, byte[] image) {
        return submit(params, image, Map.of(), true);
    }

    JsonNode job(String id) {
        return get("/v1/jobs/" + id).json();
    }

    /** Polls until the job is in a final state; returns it. */
    JsonNode await(String id, Duration timeout) throws InterruptedException {
        long until = System.nanoTime() + timeout.toNanos();
        while (true) {
            JsonNode j = job(id);
            String s = j.path("state").asText();
            if (s.equals("succeeded") || s.equals("failed") || s.equals("cancelled")) return j;
            if (System.nanoTime() > until) throw new AssertionError("job " + id + " still " + s + " after " + timeout);
            Thread.sleep(50);
        }
    }

    /** Polls until the job is in state s. */
    JsonNode awaitState(String id, String s, Duration timeout) throws InterruptedException {
        long until = System.nanoTime() + timeout.toNanos();
        while (true) {
            JsonNode j = job(id);
            if (j.path("state").asText().equals(s)) return j;
            if (System.nanoTime() > until) throw new AssertionError("job " + id + " is " + j.path("state").asText() + ", not " + s + " after " + timeout);
            Thread.sleep(20);
        }
    }

    /** kill -9. */
    void kill() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(30, TimeUnit.SECONDS);
    }

    /** SIGTERM, and waits for the exit. */
    int stop() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(60, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new AssertionError("server did not stop within 60 s of SIGTERM");
        }
        return process.exitValue();
    }

    /** The server's threads, as its JVM prints them on SIGQUIT (for a failure that looks like a hang). */
    String threadDump() {
        try {
            new ProcessBuilder("kill", "-3", Long.toString(process.pid())).start().waitFor();
            Thread.sleep(1000);
            String out = Files.readString(data.resolve("serve.out"));
            int at = out.lastIndexOf("Full thread dump");
            return at < 0 ? "(no thread dump)" : out.substring(at);
        } catch (IOException | InterruptedException e) {
            return "(no thread dump: " + e + ")";
        }
    }

    String log() throws IOException {
        return Files.readString(data.resolve("serve.log"));
    }

    @Override
    public void close() throws InterruptedException {
        if (process.isAlive()) kill();
    }
}
