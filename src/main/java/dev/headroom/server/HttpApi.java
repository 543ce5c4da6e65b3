package dev.headroom.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.headroom.core.sched.Scheduling;
import dev.headroom.core.sched.Waiting;
import io.javalin.Javalin;
import io.javalin.config.SizeUnit;
import io.javalin.http.Context;
import io.javalin.http.UploadedFile;
import io.javalin.http.sse.SseClient;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The HTTP API on Javalin 7 (Jetty 12), every request on a virtual thread: routes, bearer-token
 * auth, upload limits, and errors as RFC 9457 {@code application/problem+json} with a one-line
 * detail and never a stack trace. The routes and their answers are listed in README.md.
 */
public final class HttpApi {
    static final ObjectMapper JSON = new ObjectMapper();
    /** The largest body of a request that is not an upload (a PATCH), and of a request's line and headers. */
    static final int MAX_BODY = 1 << 20, MAX_HEADERS = 8 << 10;   // Jetty's own header limit, named here for the detail

    private final ServeConfig cfg;
    private final HeadroomServer server;
    private final String token;
    private Javalin app;

    HttpApi(ServeConfig cfg, HeadroomServer server, String token) {
        this.cfg = cfg;
        this.server = server;
        this.token = token;
    }

    /** Starts listening; returns the port (the one asked for, or the one the system chose for port 0). */
    int start(Path tmp) {
        app = Javalin.create(c -> {
            c.concurrency.useVirtualThreads = true;
            c.startup.showJavalinBanner = false;
            c.startup.showOldJavalinVersionWarning = false;
            c.http.maxRequestSize = MAX_BODY;
            c.jetty.modifyHttpConfiguration(h -> h.setRequestHeaderSize(MAX_HEADERS));
            c.jetty.modifyServer(s -> s.setErrorHandler(new Problems.JettyErrors(MAX_HEADERS)));
            c.router.javaLangErrorHandler(Problems::fatal);
            c.jetty.multipartConfig.cacheDirectory(tmp.toString());
            c.jetty.multipartConfig.maxFileSize(cfg.maxUpload(), SizeUnit.BYTES);
            c.jetty.multipartConfig.maxTotalRequestSize(cfg.maxUpload() + (1 << 20), SizeUnit.BYTES);
            c.jetty.multipartConfig.maxInMemoryFileSize(1, SizeUnit.MB);
            var r = c.routes;
            r.before(this::authenticate);
            server.dashboard().routes(r);
            r.get("/healthz", ctx -> json(ctx, 200, Map.of("status", "ok")));
            r.get("/readyz", ctx -> {
                if (!server.ready()) throw new ApiError(503, "Service Unavailable", "the server is starting or stopping; try again shortly");
                json(ctx, 200, Map.of("status", "ready"));
            });
            r.get("/metrics", ctx -> {
                ctx.contentType(server.metrics().contentType());
                server.metrics().write(ctx.outputStream());
            });
            r.post("/v1/jobs", this::submit);
            r.get("/v1/jobs", this::list);
            r.get("/v1/jobs/{id}", ctx -> json(ctx, 200, view(job(ctx))));
            r.get("/v1/jobs/{id}/result", this::result);
            r.get("/v1/jobs/{id}/events", this::events);
            r.delete("/v1/jobs/{id}", this::cancel);
            r.patch("/v1/jobs/{id}", this::patch);
            r.post("/v1/queue/pause", ctx -> json(ctx, 200, server.pause(true)));
            r.post("/v1/queue/resume", ctx -> json(ctx, 200, server.pause(false)));
            r.get("/v1/devices", ctx -> json(ctx, 200, Map.of("devices", server.devices().stream().map(DeviceSlot::snapshot).toList())));
            r.get("/v1/models", ctx -> json(ctx, 200, Map.of("models", server.modelsView())));
            r.get("/v1/nodes", ctx -> json(ctx, 200, Map.of("nodes", server.nodesView())));
            r.post("/v1/models/{name}/load", ctx -> json(ctx, 200, server.loadModel(ctx.pathParam("name"), true)));
            r.post("/v1/models/{name}/unload", ctx -> json(ctx, 200, server.loadModel(ctx.pathParam("name"), false)));
            r.exception(ApiError.class, (e, ctx) -> {
                if (ctx.method().name().equals("POST") && ctx.path().equals("/v1/jobs")) server.metrics().refused.labelValues(String.valueOf(e.status)).inc();
                Problems.write(ctx, e.status, e.title, e.getMessage());
            });
            Problems.install(r, MAX_BODY, cfg.maxUpload());
        });
        app.start(cfg.host(), cfg.port());
        return app.port();
    }

    void stop() {
        if (app != null) app.stop();
    }

    private void authenticate(Context ctx) {
        String p = ctx.path();
        if (!cfg.auth() || p.equals("/healthz") || p.equals("/readyz") || Dashboard.isPublic(p)) return;
        String h = ctx.header("Authorization");
        if (h == null && server.dashboard().session(ctx)) return;   // the dashboard's session cookie
        String given = h != null && h.regionMatches(true, 0, "Bearer ", 0, 7) ? h.substring(7).strip() : "";
        if (!MessageDigest.isEqual(given.getBytes(StandardCharsets.UTF_8), token.getBytes(StandardCharsets.UTF_8))) {
            ctx.header("WWW-Authenticate", "Bearer realm=\"headroom\"");
            throw new ApiError(401, "Unauthorized", h == null ? "this route needs 'Authorization: Bearer TOKEN'; the token is in DATA/token on the server"
                    : "the bearer token is wrong; use the one in DATA/token on the server");
        }
    }

    private void submit(Context ctx) throws IOException {
        long length = ctx.req().getContentLengthLong();
        if (length > cfg.maxUpload() + (1 << 20)) {
            // read a moderately oversized body before answering, so the client, still sending, sees
            // the 413 instead of a broken pipe; a huge one is cut off
            if (length <= 4 * cfg.maxUpload() + (16L << 20)) ctx.req().getInputStream().transferTo(java.io.OutputStream.nullOutputStream());
            throw tooLarge();
        }
        if (!ctx.isMultipartFormData()) {
            String sent = ctx.contentType() == null ? "no Content-Type" : "Content-Type " + shortened(ctx.contentType());
            throw new ApiError(415, "Unsupported Media Type", "the body has " + sent + "; send multipart/form-data with parts 'params' (JSON) and 'image' (the file)");
        }
        String params;
        UploadedFile image;
        try {
            params = ctx.formParam("params");
            image = ctx.uploadedFile("image");
        } catch (RuntimeException e) {
            String m = String.valueOf(e.getMessage()) + " " + e.getCause();
            if (m.toLowerCase().contains("size") || m.toLowerCase().contains("exceed") || m.toLowerCase().contains("too large")) throw tooLarge();
            throw ApiError.bad("the multipart body could not be read; send multipart/form-data with parts 'params' and 'image'");
        }
        if (params == null) {
            // a client may send params as a file part (with a filename); take it from there
            UploadedFile f = ctx.uploadedFile("params");
            if (f != null && f.size() <= (1 << 20)) try (InputStream in = f.content()) {
                params = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            }
        }
        Job job;
        try (InputStream in = image == null ? null : image.content()) {
            job = server.submissions().submit(params, in, ctx.header("Idempotency-Key"));
        }
        server.poke();
        ctx.header("Location", "/v1/jobs/" + job.id());
        json(ctx, 202, view(job));
    }

    private ApiError tooLarge() {
        return new ApiError(413, "Content Too Large", "the upload is larger than this server's limit of " + dev.headroom.core.Sizes.format(cfg.maxUpload())
                + " (--max-upload); send a smaller file");
    }

    private Job job(Context ctx) {
        String id = ctx.pathParam("id");
        return server.store().get(id).orElseThrow(() -> ApiError.notFound(id));
    }

    private void list(Context ctx) throws IOException {
        String s = ctx.queryParam("state"), l = ctx.queryParam("limit"), a = ctx.queryParam("after");
        JobState state;
        int limit;
        long after;
        try {
            state = s == null ? null : JobState.parse(s);
            limit = l == null ? 100 : Integer.parseInt(l);
            after = a == null ? 0 : Long.parseLong(a);
        } catch (IllegalArgumentException e) {
            throw ApiError.bad("bad query: " + e.getMessage() + "; use state=queued|running|succeeded|failed|cancelled, limit=1..1000, after=NEXT from the last page");
        }
        if (limit < 1 || limit > 1000) throw ApiError.bad("limit=" + limit + " is out of range; use limit=1..1000");
        List<Job> jobs = server.store().list(state, after, limit);
        Map<String, Object> page = new LinkedHashMap<>();
        page.put("jobs", jobs.stream().map(this::view).toList());
        page.put("next", jobs.size() == limit ? String.valueOf(jobs.getLast().seq()) : null);
        json(ctx, 200, page);
    }

    private void result(Context ctx) throws IOException {
        Job j = job(ctx);
        if (j.state() != JobState.succeeded) {
            throw new ApiError(409, "Conflict", "job " + j.id() + " is " + j.state() + (j.state().terminal() ? " and has no result" : "; wait until it has succeeded"));
        }
        Path f = server.dir().result(j.id());
        String etag = "\"" + j.resultHash() + "\"";
        ctx.header("ETag", etag);
        if (etag.equals(ctx.header("If-None-Match"))) {
            ctx.status(304);
            return;
        }
        if (!Files.isRegularFile(f)) {
            throw new ApiError(410, "Gone", "the result of job " + j.id() + " is no longer on this server (its file was removed); submit the job again");
        }
        ctx.contentType(switch (Workers.format(j)) {
            case "jpeg" -> "image/jpeg";
            case "webp" -> "image/webp";
            default -> "image/png";
        });
        ctx.header("Content-Length", String.valueOf(Files.size(f)));
        try (InputStream in = Files.newInputStream(f)) {
            in.transferTo(ctx.outputStream());
        }
    }

    private void cancel(Context ctx) throws IOException {
        String id = ctx.pathParam("id");
        server.workers().cancel(id).orElseThrow(() -> ApiError.notFound(id));
        json(ctx, 200, view(job(ctx)));
    }

    private void patch(Context ctx) throws IOException {
        String id = ctx.pathParam("id");
        JsonNode body;
        try {
            body = JSON.readTree(ctx.body());
        } catch (IOException e) {
            throw ApiError.bad("the body is not JSON; send {\"priority\": N}");
        }
        if (body == null || !body.has("priority") || !body.get("priority").isIntegralNumber() || !body.get("priority").canConvertToInt() || body.size() != 1) {
            throw ApiError.unprocessable("the body " + shortened(body == null ? "" : body.toString()) + " is not {\"priority\": N} with an integer N;"
                    + " send only that (only a queued job's priority can change)");
        }
        Job j = job(ctx);
        if (!server.store().priority(id, body.get("priority").intValue())) {
            throw new ApiError(409, "Conflict", "job " + id + " is " + server.store().get(id).map(Job::state).orElse(j.state()) + "; only a queued job can be reordered");
        }
        server.poke();
        json(ctx, 200, view(job(ctx)));
    }

    /** Server-sent events of one job, from the start or after Last-Event-ID, until it ends. */
    private void events(Context ctx) throws Exception {
        Job j = job(ctx);
        long after = 0;
        String last = ctx.header("Last-Event-ID");
        if (last != null) {
            try {
                after = Long.parseLong(last.strip());
            } catch (NumberFormatException e) {
                throw ApiError.bad("Last-Event-ID '" + shortened(last) + "' is not a number; send the id of an event this stream sent, or no Last-Event-ID");
            }
        }
        ctx.status(200);
        ctx.contentType("text/event-stream");
        ctx.header("Cache-Control", "no-cache");
        ctx.header("X-Accel-Buffering", "no");
        SseClient sse = new SseClient(ctx);
        JobEvents events = server.events();
        if (!events.known(j.id())) {
            // from before a restart, or long past: the stored state is all there is
            sse.sendEvent(j.state().name(), JSON.writeValueAsString(view(j)), "1");
            if (!j.state().terminal()) sse.sendComment("live events of this job began before the server restarted; poll GET /v1/jobs/" + j.id());
            return;
        }
        int quiet = 0;
        while (!sse.terminated()) {
            List<JobEvents.Event> next = events.after(j.id(), after, 1_000);
            if (next == null) return;
            if (next.isEmpty()) {
                // in a fleet the job may run on another server, whose events are not here: its end shows in the shared store
                Job stored = server.store().shared() ? server.store().get(j.id()).orElse(null) : null;
                if (stored != null && stored.state().terminal()) {
                    sse.sendEvent(stored.state().name(), JSON.writeValueAsString(view(stored)), String.valueOf(after + 1));
                    return;
                }
                if (++quiet % 15 == 0) sse.sendComment("keep-alive");
                continue;
            }
            for (JobEvents.Event e : next) {
                sse.sendEvent(e.name(), JSON.writeValueAsString(e.data()), String.valueOf(e.id()));
                after = e.id();
                if (e.terminal()) return;
            }
        }
    }

    /** A job as the API shows it. */
    Map<String, Object> view(Job j) {
        Map<String, Object> v = new LinkedHashMap<>();
        v.put("id", j.id());
        v.put("state", j.state().name());
        v.put("priority", j.priority());
        v.put("model", j.model());
        v.put("width", j.width());
        v.put("height", j.height());
        v.put("tile", j.tile());
        try {
            JsonNode params = JSON.readTree(j.params());
            int scale = params.path("scale").asInt(0);
            if (scale > 0) {
                v.put("out_width", j.width() * scale);
                v.put("out_height", j.height() * scale);
            }
            v.put("format", params.path("format").asText("png"));
        } catch (IOException e) {
            // params are written by this server; nothing to add if they cannot be read
        }
        v.put("predicted_peak_bytes", j.peakBytes());
        if (j.state() == JobState.queued) v.put("position", position(j));
        v.put("progress", Map.of("done", j.progressDone(), "total", j.progressTotal()));
        v.put("error", j.error());
        v.put("cached", j.cached());
        v.put("attempts", j.attempts());
        v.put("cancel_requested", j.cancelRequested());
        v.put("created_at", time(j.created()));
        v.put("started_at", time(j.started()));
        v.put("finished_at", time(j.finished()));
        if (j.state() == JobState.succeeded) {
            v.put("result", "/v1/jobs/" + j.id() + "/result");
            v.put("result_bytes", j.resultBytes());
            v.put("etag", j.resultHash());
        }
        return v;
    }

    /** How many queued jobs go before this one, in the policy's order now (0: next). */
    private int position(Job j) {
        List<Waiting> w = new ArrayList<>();
        for (Job q : server.store().queued(1000)) w.add(new Waiting(q.id(), q.priority(), q.created(), q.seq(), q.model(), q.peakBytes()));
        List<Waiting> order = Scheduling.order(w, server.now(), Scheduling.Config.DEFAULT);
        for (int i = 0; i < order.size(); i++) if (order.get(i).id().equals(j.id())) return i;
        return order.size();
    }

    /** A client's value in a detail: one line, at most 60 characters. */
    static String shortened(String v) {
        String s = v.lines().findFirst().orElse("").strip();
        return s.length() > 60 ? s.substring(0, 60) + "..." : s;
    }

    private static String time(long millis) {
        return millis == 0 ? null : Instant.ofEpochMilli(millis).toString();
    }

    static void json(Context ctx, int status, Object body) throws IOException {
        ctx.status(status);
        ctx.contentType("application/json");
        ctx.result(JSON.writeValueAsBytes(body));
    }
}
