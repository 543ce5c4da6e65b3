package dev.headroom.server;

import io.javalin.config.RoutesConfig;
import io.javalin.http.Context;
import io.javalin.http.sse.SseClient;
import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The web dashboard of {@code headroom serve}: the page at {@code /} (a login form until the
 * browser holds a session), its assets from the jar, a server-sent event stream of the server's
 * state, each job's memory report, and the alert rules evaluated every half second.
 *
 * <p>Sessions: {@code POST /login} with the server's token sets a random session id in a cookie
 * ({@code HttpOnly; SameSite=Strict}); the API accepts that cookie as it accepts the bearer token.
 * A request that changes something and comes with the cookie must also carry
 * {@code X-Requested-With: headroom}, which a page from another origin (another port of this host
 * is the same site) cannot send without a CORS preflight that this server never grants.
 *
 * <p>The page talks to nothing but this server: its Content-Security-Policy allows only 'self'.
 */
public final class Dashboard {
    static final String COOKIE = "headroom_session";
    static final String CSRF_HEADER = "X-Requested-With";
    private static final long SESSION_MILLIS = 12L * 3600 * 1000;
    private static final int MAX_SESSIONS = 1000;
    static final String CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
            + "form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
    private static final List<String> ASSETS = List.of("app.js", "app.css", "logo.svg");

    private final HeadroomServer server;
    private final boolean auth;
    private final String token;
    private final Map<String, Long> sessions = new ConcurrentHashMap<>();
    private final SecureRandom random = new SecureRandom();
    final MemoryTimeline timeline;
    final Alerts alerts;
    private final AlertWebhook webhook;
    private final DashboardState state;
    private final Counter alertsFired, webhookFailures;
    private volatile boolean stopped;

    Dashboard(HeadroomServer server, boolean auth, String token, Alerts.Config alertConfig) {
        this.server = server;
        this.auth = auth;
        this.token = token;
        this.timeline = new MemoryTimeline(server.devices(), server.models(), server.dir().root().resolve("reports"));
        this.alerts = new Alerts(alertConfig);
        this.webhook = alertConfig.webhook() == null ? null : new AlertWebhook(alertConfig.webhook(), server::url);
        this.state = new DashboardState(server, this);
        var reg = server.metrics().registry();
        alertsFired = Counter.builder().name("headroom_alerts_fired").help("Alerts that started firing, by rule").labelNames("rule").register(reg);
        webhookFailures = Counter.builder().name("headroom_alert_webhook_failures").help("Alert posts to --alert-webhook that failed").register(reg);
        for (String r : Alerts.RULES) alertsFired.labelValues(r);
        GaugeWithCallback.builder().name("headroom_alerts_firing").help("Alerts firing now, by rule").labelNames("rule").callback(cb -> {
            Map<String, Integer> n = new java.util.LinkedHashMap<>();
            for (String r : Alerts.RULES) n.put(r, 0);
            for (Alerts.Alert a : alerts.firing()) n.merge(a.rule(), 1, Integer::sum);
            n.forEach((r, c) -> cb.call(c, r));
        }).register(reg);
        server.events().listen((job, e) -> timeline.emitted(job, e, server.now()));
    }

    /** Samples memory and evaluates the alert rules every half second until {@link #stop}. */
    void start() {
        Thread.ofPlatform().daemon().name("headroom-dashboard").start(() -> {
            while (!stopped) {
                try {
                    tick(server.now());
                    Thread.sleep(500);
                } catch (InterruptedException e) {
                    return;
                } catch (RuntimeException e) {
                    if (!stopped) System.err.println("headroom serve: dashboard monitor: " + e);
                }
            }
        });
    }

    void tick(long now) {
        timeline.sample(now);
        Map<String, dev.headroom.runtime.memory.Pressure> pressure = new java.util.LinkedHashMap<>();
        for (DeviceSlot d : server.devices()) pressure.put(d.name(), d.pressure());
        var counts = server.store().counts();
        Metrics m = server.metrics();
        long rungs = 0;
        for (DeviceSlot d : server.devices()) for (long n : d.device().memory().rungs().values()) rungs += n;
        List<Alerts.Alert> changed = alerts.evaluate(new Alerts.Input(now, pressure, server.store().oldestQueued(), counts.getOrDefault(JobState.succeeded, 0L),
                counts.getOrDefault(JobState.failed, 0L), rungs, (long) m.outOfMemory.get()));
        for (Alerts.Alert a : changed) {
            if (a.firing()) alertsFired.labelValues(a.rule()).inc();
            if (webhook != null) webhook.post(a);
        }
        if (webhook != null) {
            long f = webhook.failures.get();
            if (f > webhookFailures.get()) webhookFailures.inc(f - webhookFailures.get());
        }
    }

    void stop() {
        stopped = true;
    }

    /** Paths anyone may fetch: the page (a login form without a session), the login itself, and the static assets. */
    static boolean isPublic(String path) {
        return path.equals("/") || path.equals("/login") || path.equals("/logout") || path.startsWith("/assets/");
    }

    /** Whether the request carries a live session cookie; a changing request with one must also carry the CSRF header. */
    boolean session(Context ctx) {
        String id = ctx.cookie(COOKIE);
        if (id == null) return false;
        Long until = sessions.get(id);
        if (until == null || until < System.currentTimeMillis()) return false;
        String m = ctx.method().name();
        if (!m.equals("GET") && !m.equals("HEAD") && !"headroom".equals(ctx.header(CSRF_HEADER))) {
            throw new ApiError(403, "Forbidden", "a request from the dashboard that changes something must carry '" + CSRF_HEADER + ": headroom'");
        }
        return true;
    }

    void routes(RoutesConfig r) {
        r.get("/", this::page);
        r.post("/login", this::login);
        r.post("/logout", ctx -> {
            String id = ctx.cookie(COOKIE);
            if (id != null) sessions.remove(id);
            ctx.header("Set-Cookie", COOKIE + "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
            ctx.redirect("/", io.javalin.http.HttpStatus.SEE_OTHER);
        });
        r.get("/assets/{name}", this::asset);
        r.get("/v1/dashboard/state", ctx -> HttpApi.json(ctx, 200, state.full()));
        r.get("/v1/dashboard/stream", this::stream);
        r.get("/v1/jobs/{id}/memory-report", this::report);
    }

    private void secure(Context ctx) {
        ctx.header("Content-Security-Policy", CSP);
        ctx.header("X-Content-Type-Options", "nosniff");
        ctx.header("Referrer-Policy", "no-referrer");
        ctx.header("X-Frame-Options", "DENY");
        ctx.header("Cache-Control", "no-store");
    }

    private void page(Context ctx) throws IOException {
        secure(ctx);
        boolean in = !auth || (ctx.cookie(COOKIE) != null && sessions.getOrDefault(ctx.cookie(COOKIE), 0L) > System.currentTimeMillis());
        html(ctx, 200, resource(in ? "index.html" : "login.html"));
    }

    private void login(Context ctx) throws IOException {
        secure(ctx);
        String given = ctx.formParam("token");
        if (!auth) {
            ctx.redirect("/", io.javalin.http.HttpStatus.SEE_OTHER);
            return;
        }
        if (given == null || !MessageDigest.isEqual(given.strip().getBytes(StandardCharsets.UTF_8), token.getBytes(StandardCharsets.UTF_8))) {
            html(ctx, 401, resource("login.html").replace("<!--error-->",
                    "<p class=error role=alert>That token is not this server's. It is in DATA/token on the server.</p>"));
            return;
        }
        long now = System.currentTimeMillis();
        if (sessions.size() >= MAX_SESSIONS) sessions.values().removeIf(t -> t < now);
        if (sessions.size() >= MAX_SESSIONS) sessions.clear();   // a flood of logins: everyone logs in again
        byte[] b = new byte[32];
        random.nextBytes(b);
        String id = HexFormat.of().formatHex(b);
        sessions.put(id, now + SESSION_MILLIS);
        ctx.header("Set-Cookie", COOKIE + "=" + id + "; Path=/; Max-Age=" + SESSION_MILLIS / 1000 + "; HttpOnly; SameSite=Strict");
        ctx.redirect("/", io.javalin.http.HttpStatus.SEE_OTHER);
    }

    private static void html(Context ctx, int status, String body) {
        ctx.status(status);
        ctx.contentType("text/html; charset=utf-8");
        ctx.result(body);
    }

    static String resource(String name) throws IOException {
        try (InputStream in = Dashboard.class.getResourceAsStream("web/" + name)) {
            if (in == null) throw new IOException("the jar lacks dashboard asset " + name);
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    private void asset(Context ctx) throws IOException {
        String name = ctx.pathParam("name");
        if (!ASSETS.contains(name)) throw new ApiError(404, "Not Found", "no dashboard asset '" + name + "'; the assets are " + String.join(", ", ASSETS));
        secure(ctx);
        ctx.header("Cache-Control", "no-cache");
        ctx.contentType(name.endsWith(".js") ? "text/javascript; charset=utf-8" : name.endsWith(".css") ? "text/css; charset=utf-8" : "image/svg+xml");
        ctx.result(resource(name));
    }

    /** The state now, then what changed every half second, as server-sent "state" events, until the client goes. */
    private void stream(Context ctx) throws Exception {
        ctx.status(200);
        ctx.contentType("text/event-stream");
        ctx.header("Cache-Control", "no-cache");
        ctx.header("X-Accel-Buffering", "no");
        SseClient sse = new SseClient(ctx);
        long after = 0, markersAfter = 0;
        while (!sse.terminated() && !stopped) {
            Map<String, Object> s = state.since(after, markersAfter);
            after = (Long) s.remove("_samples_seq");
            markersAfter = (Long) s.remove("_markers_seq");
            sse.sendEvent("state", HttpApi.JSON.writeValueAsString(s));
            Thread.sleep(500);
        }
    }

    private void report(Context ctx) throws IOException {
        String id = ctx.pathParam("id");
        Job j = server.store().get(id).orElseThrow(() -> ApiError.notFound(id));
        var f = timeline.trace(id);
        if (!Files.isRegularFile(f)) {
            throw new ApiError(404, "Not Found", "job " + id + " has no memory report" + (j.state().terminal() ? " (it ran before this server kept traces, came from the cache, or was one of more than "
                    + MemoryTimeline.TRACES + " since)" : " yet; it has one once it has ended"));
        }
        var t = dev.headroom.runtime.memory.MemoryReport.read(f);
        if (t.points().isEmpty()) throw new ApiError(404, "Not Found", "job " + id + " allocated no device memory");
        ctx.header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'");
        ctx.header("X-Content-Type-Options", "nosniff");
        html(ctx, 200, dev.headroom.runtime.memory.MemoryReport.html(t).replace("<h1>Device memory over time</h1>", "<h1>Device memory of job " + id + "</h1>"));
    }
}
