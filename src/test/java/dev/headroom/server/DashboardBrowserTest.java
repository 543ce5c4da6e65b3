package dev.headroom.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.sun.net.httpserver.HttpServer;
import dev.headroom.testing.Golden;
import java.awt.image.BufferedImage;
import java.net.InetSocketAddress;
import java.net.http.HttpRequest;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;
import org.openqa.selenium.By;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.TakesScreenshot;
import org.openqa.selenium.WebDriver;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.support.ui.Select;
import org.openqa.selenium.support.ui.WebDriverWait;

/**
 * The dashboard in a real browser: Debian's headless Chromium, driven by Selenium through
 * chromedriver, against a real {@code headroom serve} process on loopback (CPU backend). It logs in,
 * pauses the queue and submits a job from the page, sees it wait and the queue-age alert fire (on
 * the page, in /metrics and at a webhook on loopback), resumes, watches the job's progress and
 * result, sees the device's memory change on the timeline, unloads a model, and checks that model
 * names with HTML in them show as text. Chromium gets a dead proxy for everything but loopback, so
 * the page must load with the network blocked ({@link Chromium}); the test also checks that nothing it fetched left
 * the server's origin. A screenshot goes to target/dashboard.png and the page's weight to
 * target/dashboard-weight.txt.
 *
 * <p>Skipped, saying so, where chromium or chromedriver is not installed ({@code .ci/run}
 * installs both).
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class DashboardBrowserTest {
    static final String EVIL = "<img src=x onerror=alert(1)>";
    static final Duration WAIT = Duration.ofSeconds(60);

    @TempDir
    static Path dir;
    static ServerProcess server;
    static WebDriver browser;
    static HttpServer webhook;
    static final List<String> posted = new CopyOnWriteArrayList<>();
    static Path picture;
    static String jobId;

    @BeforeAll
    static void start() throws Exception {
        String missing = Chromium.missing();
        if (missing != null) {
            System.err.println("DashboardBrowserTest skipped: " + missing);
            Assumptions.abort("skipped: " + missing);
        }
        webhook = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        webhook.createContext("/hook", x -> {
            posted.add(new String(x.getRequestBody().readAllBytes(), StandardCharsets.UTF_8));
            x.sendResponseHeaders(204, -1);
            x.close();
        });
        webhook.start();
        Path data = dir.resolve("data");
        Files.createDirectories(data.resolve("models"));
        // a model whose name is HTML: a file in DATA/models is known by its name
        Files.copy(Golden.dir().resolve("srvgg-x4.pth"), data.resolve("models").resolve(EVIL + ".pth"));
        server = new ServerProcess(data, "--device", "cpu", "--vram-budget", "256MiB", "--model", "srvgg=" + Golden.dir().resolve("srvgg-x4.pth"),
                "--alert-queue-age", "1", "--alert-webhook", "http://127.0.0.1:" + webhook.getAddress().getPort() + "/hook");
        picture = dir.resolve("rings.png");
        ImageIO.write(rings(160, 120), "png", picture.toFile());

        browser = Chromium.start(dir, 1400, 1700);
    }

    @AfterAll
    static void stop() throws Exception {
        if (browser != null) browser.quit();
        if (server != null) {
            int code = server.stop();
            assertTrue(code == 0 || code == 143, "exit status " + code + "\n" + server.log());
        }
        if (webhook != null) webhook.stop(0);
    }

    /** Concentric rings on a gradient: a picture whose upscale one can look at. */
    static BufferedImage rings(int w, int h) {
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                double r = Math.hypot(x - w / 2.0, y - h / 2.0);
                int v = (int) (127.5 + 127.5 * Math.sin(r / 3.0));
                img.setRGB(x, y, (v << 16) | ((x * 255 / w) << 8) | (255 - y * 255 / h));
            }
        }
        return img;
    }

    Object js(String script, Object... args) {
        return ((JavascriptExecutor) browser).executeScript(script, args);
    }

    void until(String what, java.util.function.Supplier<Boolean> condition) {
        new WebDriverWait(browser, WAIT).withMessage(what).until(d -> condition.get());
    }

    /** The text of the first element the selector finds now, or "" (the page redraws parts: never hold an element across a wait). */
    String text(String css) {
        Object t = js("const e = document.querySelector(arguments[0]); return e ? e.textContent : ''", css);
        return t == null ? "" : t.toString();
    }

    boolean present(String css) {
        return !browser.findElements(By.cssSelector(css)).isEmpty();
    }

    WebElement byCss(String css) {
        return browser.findElement(By.cssSelector(css));
    }

    /** What the page fetched, by the browser's resource timing: name (URL), transfer (bytes on the wire, headers included) and decoded (body) sizes. */
    @SuppressWarnings("unchecked")
    List<Map<String, Object>> fetched() {
        return (List<Map<String, Object>>) js("return performance.getEntries().filter(e => e.name.startsWith('http'))"
                + ".map(e => ({name: e.name, transfer: e.transferSize || 0, decoded: e.decodedBodySize || 0}))");
    }

    /** The page's weight on its first load (a fresh profile, nothing cached), to target/dashboard-weight.txt. */
    void recordWeight() throws Exception {
        long transfer = 0, decoded = 0;
        StringBuilder lines = new StringBuilder("transferred\tdecoded\turl\n");
        for (Map<String, Object> e : fetched()) {
            String url = (String) e.get("name");
            assertTrue(url.startsWith(server.url + "/"), "the page fetched " + url);
            long t = ((Number) e.get("transfer")).longValue(), d = ((Number) e.get("decoded")).longValue();
            transfer += t;
            decoded += d;
            lines.append(t).append('\t').append(d).append('\t').append(url.substring(server.url.length())).append('\n');
        }
        lines.append(transfer).append('\t').append(decoded).append("\ttotal on the first load after signing in (the event stream, open for good, not counted)\n");
        Files.createDirectories(Path.of("target"));
        Files.writeString(Path.of("target", "dashboard-weight.txt"), lines);
        System.err.print("dashboard page weight:\n" + lines);
        assertTrue(transfer > 0 && transfer < 200_000, "page weight " + transfer);
    }

    @Test
    @Order(1)
    void logsInWithTheTokenIntoAnHttpOnlySession() throws Exception {
        browser.get(server.url + "/");
        assertEquals("headroom: sign in", browser.getTitle());
        byCss("#login-token").sendKeys("not-the-token");
        byCss("#login-submit").click();
        assertTrue(byCss("p.error").getText().contains("not this server's"), browser.getPageSource());
        byCss("#login-token").sendKeys(server.token);
        byCss("#login-submit").click();
        until("the dashboard shows device cpu", () -> !browser.findElements(By.cssSelector("#devices [data-device=cpu] svg")).isEmpty());
        assertEquals("live", byCss("#conn").getText());
        recordWeight();
        assertEquals("", js("return document.cookie"), "the session cookie must be HttpOnly");
        var cookie = browser.manage().getCookieNamed(Dashboard.COOKIE);
        assertTrue(cookie.isHttpOnly() && "Strict".equals(cookie.getSameSite()), cookie.toString());
        // the cookie alone may read, but a change needs the page's header too
        var r = server.send("POST", "/v1/queue/pause", HttpRequest.BodyPublishers.noBody(), Map.of("Cookie", Dashboard.COOKIE + "=" + cookie.getValue()), false);
        assertEquals(403, r.status(), r.text());
    }

    @Test
    @Order(2)
    void submitsFromThePageWaitsInAPausedQueueAndAlerts() throws Exception {
        byCss("#pause").click();
        until("the queue pauses", () -> "true".equals(byCss("#pause").getAttribute("data-paused")));
        byCss("#file").sendKeys(picture.toString());
        new Select(byCss("#model")).selectByValue("srvgg");
        byCss("#priority").clear();
        byCss("#priority").sendKeys("3");
        byCss("#submit").click();
        until("the job is watched", () -> byCss("#watch").getAttribute("data-job") != null);
        jobId = byCss("#watch").getAttribute("data-job");
        String row = "#queue tr[data-job='" + jobId + "']";
        until("the job shows in the queue, waiting because the queue is paused", () -> text(row).contains("the queue is paused") && text(row).contains("srvgg"));
        until("the queue-age alert fires on the page", () -> !browser.findElements(By.cssSelector("#alerts [data-rule=queue_age]")).isEmpty());
        until("the alert reaches the webhook", () -> posted.stream().anyMatch(p -> p.contains("\"queue_age\"") && p.contains("\"firing\"")));
        JsonNode alert = ServerProcess.JSON.readTree(posted.stream().filter(p -> p.contains("\"queue_age\"")).findFirst().orElseThrow());
        assertEquals("headroom", alert.path("source").asText());
        assertEquals("warning", alert.path("severity").asText());
        String metrics = server.get("/metrics").text();
        assertTrue(metrics.contains("headroom_alerts_fired_total{rule=\"queue_age\"} 1.0"), metrics);
        assertTrue(metrics.contains("headroom_alerts_firing{rule=\"queue_age\"} 1.0"), metrics);
        byCss("#pause").click();
        until("the job succeeds on the page", () -> "succeeded".equals(byCss("#watch").getAttribute("data-state")));
        until("the queue-age alert resolves", () -> posted.stream().anyMatch(p -> p.contains("\"queue_age\"") && p.contains("\"resolved\"")));
    }

    @Test
    @Order(3)
    void showsProgressResultAndComparison() {
        assertTrue(Integer.parseInt(byCss("#watch").getAttribute("data-tiles")) >= 1, "no tile event reached the page");
        until("the result image loads", () -> ((Number) js("return document.getElementById('after').naturalWidth")).intValue() > 0);
        assertEquals(160 * 4L, ((Number) js("return document.getElementById('after').naturalWidth")).longValue());
        assertEquals(160L, ((Number) js("return document.getElementById('before').naturalWidth")).longValue());
        assertTrue(byCss("#download").getAttribute("href").endsWith("/v1/jobs/" + jobId + "/result"));
        WebElement slider = byCss("#compare-slider");
        js("arguments[0].value = 20; arguments[0].dispatchEvent(new Event('input'))", slider);
        assertEquals("inset(0px 80% 0px 0px)", js("return getComputedStyle(document.getElementById('before-clip')).clipPath"));
        until("the finished job shows a thumbnail and a memory report", () -> !browser.findElements(By.cssSelector("#finished [data-job='" + jobId + "'] a.report")).isEmpty()
                && ((Number) js("const i = document.querySelector(\"#finished [data-job='" + jobId + "'] img\"); return i ? i.naturalWidth : 0")).intValue() == 640);
        var report = server.get("/v1/jobs/" + jobId + "/memory-report");
        assertEquals(200, report.status(), report.text());
        assertTrue(report.text().contains("<svg") && report.text().contains("Device memory of job " + jobId), report.text());
    }

    @Test
    @Order(4)
    void theTimelineShowsTheDevicesMemoryChangeAndTheJobsEvents() {
        String card = "#devices [data-device=cpu]";
        until("the timeline drew memory held", () -> Long.parseLong(byCss(card).getAttribute("data-max-used")) > 0);
        assertTrue(present(card + " svg .marker.admitted"), "no admission marked");
        assertTrue(present(card + " svg .marker.finished"), "no finish marked");
        until("the legend names the job's activations", () -> text(card + " .legend").contains("activations: job " + jobId.substring(0, 8)));
    }

    @Test
    @Order(5)
    void namesWithHtmlShowAsText() throws Exception {
        var r = server.submit("{\"task\":\"upscale\",\"model\":\"" + EVIL.replace("\"", "\\\"") + "\",\"priority\":0}", Files.readAllBytes(picture));
        assertEquals(202, r.status(), r.text());
        String id = r.json().path("id").asText();
        server.await(id, WAIT);
        until("the job with the HTML model shows", () -> present("#finished [data-job='" + id + "']"));
        assertTrue(text("#finished [data-job='" + id + "']").contains(EVIL), text("#finished"));
        assertEquals(EVIL, text("#models tr[data-model='" + EVIL + "'] td.name"));
        assertEquals(0L, ((Number) js("return document.querySelectorAll('#models img, #finished .card > div img, #devices .legend img').length")).longValue());
        // an alert() would have stopped the driver (unhandled alert) before here
        assertEquals(Boolean.TRUE, js("return document.querySelectorAll('img[src=x]').length === 0"));
    }

    @Test
    @Order(6)
    void unloadsAModelFromThePage() {
        until("srvgg shows loaded", () -> !browser.findElements(By.cssSelector("#models tr[data-model=srvgg] button.unload")).isEmpty());
        byCss("#models tr[data-model=srvgg] button.unload").click();
        until("srvgg shows unloaded", () -> !browser.findElements(By.cssSelector("#models tr[data-model=srvgg] button.load")).isEmpty());
        boolean loaded = false;
        for (JsonNode m : server.get("/v1/models").json().path("models")) if (m.path("name").asText().equals("srvgg")) loaded = m.path("loaded").asBoolean();
        assertFalse(loaded);
        until("the unload is marked on the timeline", () -> !browser.findElements(By.cssSelector("#devices [data-device=cpu] svg .marker.unload")).isEmpty());
    }

    @Test
    @Order(7)
    void nothingLeavesLoopbackAndThePageIsLight() throws Exception {
        // without a token or session only the sign-in form and the static assets answer
        for (String path : List.of("/v1/dashboard/state", "/v1/dashboard/stream", "/v1/jobs/" + jobId + "/memory-report", "/v1/jobs/" + jobId + "/result")) {
            assertEquals(401, server.send("GET", path, HttpRequest.BodyPublishers.noBody(), Map.of(), false).status(), path);
        }
        assertEquals(404, server.send("GET", "/assets/index.html", HttpRequest.BodyPublishers.noBody(), Map.of(), false).status());
        assertEquals(200, server.send("GET", "/assets/app.js", HttpRequest.BodyPublishers.noBody(), Map.of(), false).status());
        var page = server.send("GET", "/", HttpRequest.BodyPublishers.noBody(), Map.of(), false);
        assertTrue(page.text().contains("login-token") && !page.text().contains("app.js"), "without a session / is the sign-in form");
        String csp = page.headers().firstValue("Content-Security-Policy").orElse("");
        assertTrue(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'") && csp.contains("script-src 'self'"), csp);
        // the assets name no other host (the SVG namespace is a name, never fetched)
        for (String a : List.of("index.html", "login.html", "app.js", "app.css", "logo.svg")) {
            String text = Dashboard.resource(a).replace("http://www.w3.org/2000/svg", "");
            assertFalse(text.contains("http://") || text.contains("https://") || text.contains("//cdn") || text.contains("@import"), a + " names a URL");
        }
        browser.navigate().refresh();
        until("the dashboard is live again", () -> "live".equals(byCss("#conn").getText()));
        for (Map<String, Object> e : fetched()) assertTrue(((String) e.get("name")).startsWith(server.url + "/"), "the page fetched " + e.get("name"));
        until("the history is back", () -> Long.parseLong(byCss("#devices [data-device=cpu]").getAttribute("data-max-used")) > 0);
        Files.write(Path.of("target", "dashboard.png"), ((TakesScreenshot) browser).getScreenshotAs(OutputType.BYTES));
    }
}
