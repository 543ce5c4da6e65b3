package dev.headroom.server;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Posts each alert that starts or ends to {@code --alert-webhook URL} as one JSON object
 * ({@code source}, {@code rule}, {@code subject}, {@code state} firing|resolved, {@code severity},
 * {@code summary}, {@code started_at}, {@code at}, {@code server}), on a virtual thread each, with
 * a 5 s timeout; a failed post is counted and logged on one line, never retried (the next change
 * posts again, and the page and /metrics have the state).
 */
final class AlertWebhook {
    private final URI url;
    private final java.util.function.Supplier<String> server;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    final AtomicLong failures = new AtomicLong();

    AlertWebhook(URI url, java.util.function.Supplier<String> server) {
        this.url = url;
        this.server = server;
    }

    static Map<String, Object> payload(Alerts.Alert a, String server) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("source", "headroom");
        m.put("rule", a.rule());
        m.put("subject", a.subject());
        m.put("state", a.firing() ? "firing" : "resolved");
        m.put("severity", a.severity());
        m.put("summary", a.summary());
        m.put("started_at", Instant.ofEpochMilli(a.since()).toString());
        m.put("at", Instant.ofEpochMilli(a.firing() ? a.since() : a.resolvedAt()).toString());
        m.put("server", server);
        return m;
    }

    void post(Alerts.Alert a) {
        byte[] body;
        try {
            body = HttpApi.JSON.writeValueAsBytes(payload(a, server.get()));
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
        Thread.ofVirtual().name("headroom-alert-webhook").start(() -> {
            try {
                HttpResponse<Void> r = http.send(HttpRequest.newBuilder(url).timeout(Duration.ofSeconds(5)).header("Content-Type", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofByteArray(body)).build(), HttpResponse.BodyHandlers.discarding());
                if (r.statusCode() / 100 != 2) fail(a, "HTTP " + r.statusCode());
            } catch (java.io.IOException e) {
                fail(a, e.toString());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
    }

    private void fail(Alerts.Alert a, String why) {
        failures.incrementAndGet();
        System.err.println("headroom serve: alert " + a.rule() + " could not be posted to " + url + ": " + why);
    }
}
