package dev.headroom.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.headroom.server.DataDir;
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.UUID;
import java.util.function.BiConsumer;
import picocli.CommandLine.Option;

/**
 * The client side of {@code headroom serve} for {@code submit} and {@code jobs}: --server and
 * --token, requests with the bearer token, problem details turned into one-line errors, and the
 * event stream read line by line.
 */
final class ServerClient {
    static final ObjectMapper JSON = new ObjectMapper();

    @Option(names = "--server", paramLabel = "URL", defaultValue = "http://127.0.0.1:8188", description = "The server (default: ${DEFAULT-VALUE})")
    String server;

    @Option(names = "--token", paramLabel = "FILE", description = "File holding the bearer token (default: $HEADROOM_TOKEN, else DATA/token of the default data folder)")
    Path token;

    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

    private String bearer() throws IOException {
        if (token != null) {
            if (!Files.isRegularFile(token)) throw new Main.UsageError("--token " + token + ": no such file");
            return Files.readString(token).strip();
        }
        String env = System.getenv("HEADROOM_TOKEN");
        if (env != null && !env.isBlank()) return env.strip();
        Path f = DataDir.platformDefault().resolve("token");
        return Files.isRegularFile(f) ? Files.readString(f).strip() : null;
    }

    private HttpRequest.Builder request(String path) throws IOException {
        URI uri;
        try {
            uri = URI.create(server.replaceAll("/+$", "") + path);
        } catch (IllegalArgumentException e) {
            throw new Main.UsageError("--server " + server + " is not a URL");
        }
        HttpRequest.Builder b = HttpRequest.newBuilder(uri);
        String t = bearer();
        if (t != null) b.header("Authorization", "Bearer " + t);
        return b;
    }

    <T> HttpResponse<T> send(HttpRequest r, HttpResponse.BodyHandler<T> h) throws IOException, InterruptedException {
        try {
            return http.send(r, h);
        } catch (ConnectException e) {
            throw new Main.UsageError("cannot reach the server at " + server + "; start it with 'headroom serve' or give --server");
        }
    }

    /** Sends a request and returns the JSON body of a 2xx answer; anything else becomes a one-line error. */
    JsonNode call(String method, String path, HttpRequest.BodyPublisher body, String contentType) throws IOException, InterruptedException {
        HttpRequest.Builder b = request(path).method(method, body);
        if (contentType != null) b.header("Content-Type", contentType);
        HttpResponse<byte[]> r = send(b.build(), HttpResponse.BodyHandlers.ofByteArray());
        check(r.statusCode(), r.body());
        return JSON.readTree(r.body());
    }

    JsonNode get(String path) throws IOException, InterruptedException {
        return call("GET", path, HttpRequest.BodyPublishers.noBody(), null);
    }

    static void check(int status, byte[] body) {
        if (status / 100 == 2) return;
        String detail;
        try {
            detail = JSON.readTree(body).path("detail").asText(new String(body, StandardCharsets.UTF_8));
        } catch (IOException e) {
            detail = new String(body, StandardCharsets.UTF_8);
        }
        String msg = "server answered " + status + ": " + detail;
        if (status / 100 == 4) throw new Main.UsageError(msg);   // the request was wrong: exit status 2
        throw new IllegalStateException(msg);
    }

    /**
     * POSTs an image as multipart/form-data with its params. The JDK's client has no multipart
     * writer; the format (RFC 7578) is a boundary line, part headers and the bytes, per part.
     */
    JsonNode submit(Path image, String params) throws IOException, InterruptedException {
        String boundary = "headroom-" + UUID.randomUUID();
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        b.writeBytes(("--" + boundary + "\r\nContent-Disposition: form-data; name=\"params\"\r\nContent-Type: application/json\r\n\r\n" + params
                + "\r\n--" + boundary + "\r\nContent-Disposition: form-data; name=\"image\"; filename=\"" + image.getFileName().toString().replace("\"", "")
                + "\"\r\nContent-Type: application/octet-stream\r\n\r\n").getBytes(StandardCharsets.UTF_8));
        b.writeBytes(Files.readAllBytes(image));
        b.writeBytes(("\r\n--" + boundary + "--\r\n").getBytes(StandardCharsets.UTF_8));
        return call("POST", "/v1/jobs", HttpRequest.BodyPublishers.ofByteArray(b.toByteArray()), "multipart/form-data; boundary=" + boundary);
    }

    /** Follows a job's events until it ends, telling {@code onTile} of each tile; returns the final event's name. */
    String follow(String id, BiConsumer<Integer, Integer> onTile) throws IOException, InterruptedException {
        HttpResponse<InputStream> r = send(request("/v1/jobs/" + id + "/events").GET().build(), HttpResponse.BodyHandlers.ofInputStream());
        if (r.statusCode() != 200) check(r.statusCode(), r.body().readAllBytes());
        String name = null, data = null, last = null;
        try (BufferedReader in = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8))) {
            for (String line; (line = in.readLine()) != null; ) {
                if (line.startsWith("event:")) name = line.substring(6).strip();
                else if (line.startsWith("data:")) data = line.substring(5).strip();
                else if (line.isEmpty() && name != null) {
                    if (name.equals("tile") && data != null) {
                        JsonNode d = JSON.readTree(data);
                        onTile.accept(d.path("done").asInt(), d.path("total").asInt());
                    }
                    last = name;
                    name = data = null;
                }
            }
        }
        // the stream ends with the job, or began before a restart: the job's state says which
        return get("/v1/jobs/" + id).path("state").asText(last);
    }

    /** Downloads a job's result to out, atomically. */
    void download(String id, Path out) throws IOException, InterruptedException {
        HttpResponse<InputStream> r = send(request("/v1/jobs/" + id + "/result").GET().build(), HttpResponse.BodyHandlers.ofInputStream());
        if (r.statusCode() != 200) check(r.statusCode(), r.body().readAllBytes());
        Path dir = out.toAbsolutePath().getParent();
        try (InputStream in = r.body()) {
            DataDir.writeAtomically(in, dir.resolve(out.getFileName()), Long.MAX_VALUE);
        }
    }
}
