package dev.headroom.cli;

import dev.headroom.server.Alerts;
import java.net.URI;
import java.time.Duration;
import picocli.CommandLine.Option;

/** {@code headroom serve}'s alert settings (the rules are {@link Alerts}'). */
final class AlertOptions {
    @Option(names = "--alert-webhook", paramLabel = "URL", description = "POST each alert that starts or ends here, as JSON")
    String webhook;

    @Option(names = "--alert-pressure-for", paramLabel = "SECONDS", defaultValue = "60",
            description = "Alert when a device's memory pressure stays at warning (75%%) or critical (90%%) this long (default: ${DEFAULT-VALUE})")
    long pressureFor;

    @Option(names = "--alert-queue-age", paramLabel = "SECONDS", defaultValue = "300", description = "Alert when a job has waited in the queue this long (default: ${DEFAULT-VALUE})")
    long queueAge;

    @Option(names = "--alert-error-rate", paramLabel = "FRACTION", defaultValue = "0.25",
            description = "Alert when this share of the jobs that ended within the window failed (default: ${DEFAULT-VALUE})")
    double errorRate;

    @Option(names = "--alert-window", paramLabel = "SECONDS", defaultValue = "300",
            description = "Window of the error-rate, rung and out-of-memory alerts (default: ${DEFAULT-VALUE})")
    long window;

    Alerts.Config config() {
        URI url = null;
        if (webhook != null) {
            try {
                url = URI.create(webhook);
            } catch (IllegalArgumentException e) {
                throw new Main.UsageError("--alert-webhook " + webhook + ": not a URL (" + e.getMessage() + ")");
            }
            if (!("http".equals(url.getScheme()) || "https".equals(url.getScheme())) || url.getHost() == null) {
                throw new Main.UsageError("--alert-webhook " + webhook + ": give an http:// or https:// URL");
            }
        }
        if (pressureFor < 0 || queueAge < 0 || window < 1) throw new Main.UsageError("--alert-pressure-for and --alert-queue-age must be 0 or more seconds, --alert-window at least 1");
        if (!(errorRate > 0 && errorRate <= 1)) throw new Main.UsageError("--alert-error-rate must be a fraction above 0 and at most 1, not " + errorRate);
        return new Alerts.Config(Duration.ofSeconds(pressureFor), Duration.ofSeconds(queueAge), errorRate, Alerts.Config.DEFAULT.errorMinJobs(),
                Duration.ofSeconds(window), url);
    }
}
