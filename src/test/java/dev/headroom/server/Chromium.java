package dev.headroom.server;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;

/**
 * Debian's headless Chromium through its chromedriver, set up for a closed machine: no sandbox,
 * GPU, QUIC, first-run, background networking, component updates or sync, a fresh profile, and a
 * dead proxy for everything but loopback (which Chromium never sends through a proxy), so a page
 * that tried to reach another host would fail to.
 */
final class Chromium {
    private Chromium() {}

    static Path find(String name) {
        for (String d : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            Path p = Path.of(d, name);
            if (Files.isExecutable(p)) return p;
        }
        Path lib = Path.of("/usr/lib/chromium", name);
        return Files.isExecutable(lib) ? lib : null;
    }

    /** Why the browser cannot start here, or null when chromium and chromedriver are both installed. */
    static String missing() {
        if (find("chromium") == null) return "chromium is not installed (apt-get install chromium chromium-driver; .ci/run installs them)";
        if (find("chromedriver") == null) return "chromedriver is not installed (apt-get install chromium-driver; .ci/run installs it)";
        return null;
    }

    static ChromeDriver start(Path work, int width, int height) throws IOException {
        ChromeOptions o = new ChromeOptions();
        o.setBinary(find("chromium").toFile());
        o.addArguments("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--user-data-dir=" + Files.createDirectories(work.resolve("chromium-profile")), "--window-size=" + width + "," + height,
                "--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1");
        ChromeDriverService service = new ChromeDriverService.Builder().usingDriverExecutable(find("chromedriver").toFile()).usingAnyFreePort()
                .withLogFile(work.resolve("chromedriver.log").toFile()).build();
        return new ChromeDriver(service, o);
    }
}
