package dev.headroom.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpServer;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.openqa.selenium.By;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.WebDriver;
import org.openqa.selenium.support.ui.WebDriverWait;

/**
 * Screenshots the dashboard with headless Chromium (scripts/serve/dashboard-screenshot runs it):
 * <pre>
 *   --url URL --token FILE OUT.png [--wait SECONDS]   a running server: signs in, waits, shoots
 *   --replay STATE.json OUT.png                      a state saved elsewhere (GET /v1/dashboard/state)
 * </pre>
 * Replay is for a server on a machine without a browser (the GPU machine): save its state with
 * curl while it works, then draw that state here. The replayed page has the memory history, queue,
 * running jobs, models and alerts of that moment; result thumbnails stay on the other machine.
 */
public final class DashboardScreenshot {
    public static void main(String[] args) throws Exception {
        String url = null, token = null, replay = null, out = null;
        long wait = 5;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--url" -> url = args[++i];
                case "--token" -> token = Files.readString(Path.of(args[++i])).strip();
                case "--replay" -> replay = args[++i];
                case "--wait" -> wait = Long.parseLong(args[++i]);
                default -> out = args[i];
            }
        }
        if (out == null || (url == null) == (replay == null) || (url != null && token == null)) {
            System.err.println("usage: dashboard-screenshot --url URL --token FILE OUT.png [--wait SECONDS] | --replay STATE.json OUT.png");
            System.exit(2);
        }
        String missing = Chromium.missing();
        if (missing != null) {
            System.err.println("dashboard-screenshot: " + missing);
            System.exit(1);
        }
        HttpServer local = null;
        if (replay != null) {
            local = replayServer(Path.of(replay));
            url = "http://127.0.0.1:" + local.getAddress().getPort();
        }
        Path work = Files.createTempDirectory("headroom-shot");
        WebDriver b = Chromium.start(work, 1400, 1600);
        try {
            b.get(url + "/");
            if (token != null) {
                b.findElement(By.id("login-token")).sendKeys(token);
                b.findElement(By.id("login-submit")).click();
            }
            new WebDriverWait(b, Duration.ofSeconds(30)).withMessage("the dashboard did not go live")
                    .until(d -> "live".equals(d.findElement(By.id("conn")).getText()));
            Thread.sleep(wait * 1000);
            Files.write(Path.of(out), ((org.openqa.selenium.TakesScreenshot) b).getScreenshotAs(OutputType.BYTES));
            System.err.println("dashboard-screenshot: wrote " + out);
        } finally {
            b.quit();
            if (local != null) local.stop(0);
        }
    }

    /** Serves the page and its assets from the jar, and the saved state as the stream's one event (held open). */
    static HttpServer replayServer(Path state) throws Exception {
        ObjectNode s = (ObjectNode) ServerProcess.JSON.readTree(state.toFile());
        for (JsonNode j : s.path("finished")) {
            ((ObjectNode) j).remove("result");
            ((ObjectNode) j).remove("memory_report");
        }
        byte[] event = ("event: state\ndata: " + ServerProcess.JSON.writeValueAsString(s) + "\n\n").getBytes(StandardCharsets.UTF_8);
        HttpServer h = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        h.setExecutor(java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor());
        h.createContext("/", x -> {
            String p = x.getRequestURI().getPath();
            try (x) {
                if (p.equals("/v1/dashboard/stream")) {
                    x.getResponseHeaders().set("Content-Type", "text/event-stream");
                    x.sendResponseHeaders(200, 0);
                    OutputStream o = x.getResponseBody();
                    o.write(event);
                    o.flush();
                    Thread.sleep(120_000);
                    return;
                }
                String name = p.equals("/") ? "index.html" : p.startsWith("/assets/") ? p.substring(8) : null;
                if (name == null || name.contains("/")) {
                    x.sendResponseHeaders(404, -1);
                    return;
                }
                byte[] body = Dashboard.resource(name).getBytes(StandardCharsets.UTF_8);
                x.getResponseHeaders().set("Content-Type", name.endsWith(".js") ? "text/javascript" : name.endsWith(".css") ? "text/css"
                        : name.endsWith(".svg") ? "image/svg+xml" : "text/html; charset=utf-8");
                x.sendResponseHeaders(200, body.length);
                x.getResponseBody().write(body);
            } catch (InterruptedException | java.io.IOException e) {
                // the browser went away
            }
        });
        h.start();
        return h;
    }
}
