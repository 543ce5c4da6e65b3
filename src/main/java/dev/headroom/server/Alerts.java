package dev.headroom.server;

import dev.headroom.runtime.memory.Pressure;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The server's alert rules, evaluated on what the server knows (DESIGN.md: server holds alerts):
 * <ul>
 * <li>{@code pressure_warning} / {@code pressure_critical}: a device's memory pressure at warning
 * (or critical) or above for {@link Config#pressureFor} without a break;
 * <li>{@code memory_rungs}: jobs took rungs of the degrade ladder (cache flushed, weights evicted,
 * batch halved, tile shrunk) within {@link Config#window};
 * <li>{@code out_of_memory}: a job failed out of device memory after every rung, within the window;
 * <li>{@code error_rate}: at least {@link Config#errorRate} of the jobs that ended within the window
 * failed (counted once at least {@link Config#errorMinJobs} ended);
 * <li>{@code queue_age}: the oldest queued job has waited {@link Config#queueAge} or more.
 * </ul>
 * {@link #evaluate} is pure bookkeeping over an {@link Input} and the time in it (tests drive it
 * with any clock); it returns the alerts that started or ended, which the server shows, counts and
 * posts to the webhook.
 */
public final class Alerts {

    /**
     * @param webhook where firing and resolved alerts are posted as JSON, or null
     */
    public record Config(Duration pressureFor, Duration queueAge, double errorRate, int errorMinJobs, Duration window, URI webhook) {
        public static final Config DEFAULT = new Config(Duration.ofSeconds(60), Duration.ofMinutes(5), 0.25, 4, Duration.ofMinutes(5), null);

        public Config {
            if (pressureFor.isNegative() || queueAge.isNegative() || window.isNegative() || window.isZero()) {
                throw new IllegalArgumentException("alert durations must be positive");
            }
            if (!(errorRate > 0 && errorRate <= 1)) throw new IllegalArgumentException("the alert error rate is a fraction in (0, 1], not " + errorRate);
        }
    }

    /** What the rules look at, at time {@code now} (milliseconds). Totals only ever grow. */
    public record Input(long now, Map<String, Pressure> pressure, long oldestQueued, long succeededTotal, long failedTotal,
                        long rungsTotal, long outOfMemoryTotal) {}

    /** An alert: firing while {@code resolvedAt} is 0. Its key is rule and subject (a device, or "server"). */
    public record Alert(String rule, String subject, String severity, String summary, long since, long resolvedAt) {
        String key() {
            return rule + ":" + subject;
        }

        public boolean firing() {
            return resolvedAt == 0;
        }
    }

    public static final List<String> RULES = List.of("pressure_warning", "pressure_critical", "memory_rungs", "out_of_memory", "error_rate", "queue_age");
    private static final int RECENT = 50;

    private final Config cfg;
    private final Map<String, Alert> firing = new LinkedHashMap<>();
    private final Deque<Alert> recent = new ArrayDeque<>();
    private final Map<String, Long> warningSince = new HashMap<>(), criticalSince = new HashMap<>();
    private final Deque<long[]> totals = new ArrayDeque<>();   // (time, succeeded, failed) over the window
    private long lastRungs = -1, lastOom = -1, rungAt, oomAt, rungsInWindow, oomInWindow;

    public Alerts(Config cfg) {
        this.cfg = cfg;
    }

    public Config config() {
        return cfg;
    }

    /** Applies the rules at {@code in.now()}; returns alerts that started (firing) or ended (resolved) now. */
    public synchronized List<Alert> evaluate(Input in) {
        long now = in.now();
        Map<String, Alert> want = new LinkedHashMap<>();
        for (var e : in.pressure().entrySet()) {
            String d = e.getKey();
            Pressure p = e.getValue();
            held(warningSince, d, p.compareTo(Pressure.WARNING) >= 0, now);
            held(criticalSince, d, p == Pressure.CRITICAL, now);
            long pf = cfg.pressureFor().toMillis();
            if (warningSince.containsKey(d) && now - warningSince.get(d) >= pf) {
                want.put("pressure_warning:" + d, new Alert("pressure_warning", d, "warning",
                        d + ": memory pressure at warning or above (>= 75% of the budget) for " + seconds(now - warningSince.get(d)), warningSince.get(d), 0));
            }
            if (criticalSince.containsKey(d) && now - criticalSince.get(d) >= pf) {
                want.put("pressure_critical:" + d, new Alert("pressure_critical", d, "critical",
                        d + ": memory pressure critical (>= 90% of the budget) for " + seconds(now - criticalSince.get(d)), criticalSince.get(d), 0));
            }
        }
        long window = cfg.window().toMillis();
        if (lastRungs >= 0 && in.rungsTotal() > lastRungs) {
            rungsInWindow = (now - rungAt <= window ? rungsInWindow : 0) + in.rungsTotal() - lastRungs;
            rungAt = now;
        }
        if (lastOom >= 0 && in.outOfMemoryTotal() > lastOom) {
            oomInWindow = (now - oomAt <= window ? oomInWindow : 0) + in.outOfMemoryTotal() - lastOom;
            oomAt = now;
        }
        lastRungs = in.rungsTotal();
        lastOom = in.outOfMemoryTotal();
        if (rungAt > 0 && now - rungAt < window) {
            want.put("memory_rungs:server", new Alert("memory_rungs", "server", "warning", rungsInWindow
                    + " rungs of the degrade ladder taken (memory ran short; jobs shrank instead of failing)", rungAt, 0));
        }
        if (oomAt > 0 && now - oomAt < window) {
            want.put("out_of_memory:server", new Alert("out_of_memory", "server", "critical", oomInWindow
                    + " jobs failed out of device memory after every rung of the ladder", oomAt, 0));
        }
        totals.addLast(new long[] {now, in.succeededTotal(), in.failedTotal()});
        while (totals.size() > 1 && now - totals.peekFirst()[0] > window) totals.removeFirst();
        long[] first = totals.peekFirst();
        long ok = in.succeededTotal() - first[1], failed = in.failedTotal() - first[2];
        if (ok + failed >= cfg.errorMinJobs() && failed >= cfg.errorRate() * (ok + failed)) {
            want.put("error_rate:server", new Alert("error_rate", "server", "warning", failed + " of the " + (ok + failed) + " jobs that ended in the last "
                    + seconds(now - first[0]) + " failed", first[0], 0));
        }
        if (in.oldestQueued() > 0 && now - in.oldestQueued() >= cfg.queueAge().toMillis()) {
            want.put("queue_age:server", new Alert("queue_age", "server", "warning", "the oldest queued job has waited " + seconds(now - in.oldestQueued()),
                    in.oldestQueued(), 0));
        }
        List<Alert> changed = new ArrayList<>();
        for (var e : want.entrySet()) {
            Alert was = firing.get(e.getKey());
            firing.put(e.getKey(), was == null ? e.getValue() : new Alert(was.rule(), was.subject(), was.severity(), e.getValue().summary(), was.since(), 0));
            if (was == null) changed.add(e.getValue());
        }
        for (var it = firing.entrySet().iterator(); it.hasNext(); ) {
            var e = it.next();
            if (want.containsKey(e.getKey())) continue;
            Alert a = e.getValue();
            changed.add(new Alert(a.rule(), a.subject(), a.severity(), a.summary(), a.since(), now));
            it.remove();
        }
        for (Alert a : changed) {
            recent.addFirst(a);
            if (recent.size() > RECENT) recent.removeLast();
        }
        return changed;
    }

    private static void held(Map<String, Long> since, String device, boolean on, long now) {
        if (on) since.putIfAbsent(device, now);
        else since.remove(device);
    }

    private static String seconds(long millis) {
        long s = Math.round(millis / 1000.0);
        return s < 120 ? s + " s" : (s / 60) + " min";
    }

    public synchronized List<Alert> firing() {
        return new ArrayList<>(firing.values());
    }

    /** The latest starts and ends, newest first. */
    public synchronized List<Alert> recent() {
        return new ArrayList<>(recent);
    }
}
