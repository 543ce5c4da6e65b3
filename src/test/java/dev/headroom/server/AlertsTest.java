package dev.headroom.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.runtime.memory.Pressure;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The alert rules over synthetic inputs and a clock the test moves: when each fires and resolves, and that each fires once. */
class AlertsTest {
    static final Alerts.Config CFG = new Alerts.Config(Duration.ofSeconds(60), Duration.ofSeconds(300), 0.25, 4, Duration.ofSeconds(300), null);

    static Alerts.Input in(long now, Pressure p, long oldestQueued, long ok, long failed, long rungs, long oom) {
        return new Alerts.Input(now, Map.of("cuda:0", p), oldestQueued, ok, failed, rungs, oom);
    }

    static List<String> rules(List<Alerts.Alert> l) {
        return l.stream().map(a -> a.rule() + (a.firing() ? "+" : "-")).toList();
    }

    @Test
    void pressureFiresOnlyAfterItHeldForTheConfiguredTimeAndResolvesWhenItDrops() {
        Alerts a = new Alerts(CFG);
        assertEquals(List.of(), rules(a.evaluate(in(0, Pressure.WARNING, 0, 0, 0, 0, 0))));
        assertEquals(List.of(), rules(a.evaluate(in(59_000, Pressure.CRITICAL, 0, 0, 0, 0, 0))));
        assertEquals(List.of("pressure_warning+"), rules(a.evaluate(in(60_000, Pressure.CRITICAL, 0, 0, 0, 0, 0))));
        assertEquals(List.of(), rules(a.evaluate(in(100_000, Pressure.CRITICAL, 0, 0, 0, 0, 0))), "fires once");
        assertEquals(List.of("pressure_critical+"), rules(a.evaluate(in(119_000, Pressure.CRITICAL, 0, 0, 0, 0, 0))));
        assertEquals("cuda:0", a.firing().getFirst().subject());
        assertEquals(List.of("pressure_critical-"), rules(a.evaluate(in(120_000, Pressure.WARNING, 0, 0, 0, 0, 0))));
        assertEquals(List.of("pressure_warning-"), rules(a.evaluate(in(121_000, Pressure.ELEVATED, 0, 0, 0, 0, 0))));
        // a dip below warning restarts the clock
        a.evaluate(in(122_000, Pressure.WARNING, 0, 0, 0, 0, 0));
        a.evaluate(in(150_000, Pressure.OPTIMAL, 0, 0, 0, 0, 0));
        assertEquals(List.of(), rules(a.evaluate(in(190_000, Pressure.WARNING, 0, 0, 0, 0, 0))));
        assertEquals(List.of(), rules(a.evaluate(in(249_000, Pressure.WARNING, 0, 0, 0, 0, 0))));
        assertEquals(List.of("pressure_warning+"), rules(a.evaluate(in(250_000, Pressure.WARNING, 0, 0, 0, 0, 0))));
    }

    @Test
    void rungsAndOutOfMemoryFireOnAnIncreaseAndResolveAfterAQuietWindow() {
        Alerts a = new Alerts(CFG);
        assertEquals(List.of(), rules(a.evaluate(in(0, Pressure.OPTIMAL, 0, 0, 0, 5, 1))), "counts from before the server looked are not news");
        assertEquals(List.of("memory_rungs+"), rules(a.evaluate(in(1_000, Pressure.OPTIMAL, 0, 0, 0, 7, 1))));
        assertTrue(a.firing().getFirst().summary().startsWith("2 rungs"), a.firing().toString());
        assertEquals(List.of("out_of_memory+"), rules(a.evaluate(in(2_000, Pressure.OPTIMAL, 0, 0, 0, 7, 2))));
        assertEquals(List.of(), rules(a.evaluate(in(300_999, Pressure.OPTIMAL, 0, 0, 0, 7, 2))));
        assertEquals(List.of("memory_rungs-"), rules(a.evaluate(in(301_000, Pressure.OPTIMAL, 0, 0, 0, 7, 2))));
        assertEquals(List.of("out_of_memory-"), rules(a.evaluate(in(302_000, Pressure.OPTIMAL, 0, 0, 0, 7, 2))));
    }

    @Test
    void errorRateCountsOnlyJobsThatEndedWithinTheWindow() {
        Alerts a = new Alerts(CFG);
        a.evaluate(in(0, Pressure.OPTIMAL, 0, 100, 50, 0, 0));   // history before: not counted
        assertEquals(List.of(), rules(a.evaluate(in(10_000, Pressure.OPTIMAL, 0, 102, 50, 0, 0))));
        assertEquals(List.of(), rules(a.evaluate(in(20_000, Pressure.OPTIMAL, 0, 102, 51, 0, 0))), "1 of 3: too few jobs");
        assertEquals(List.of("error_rate+"), rules(a.evaluate(in(30_000, Pressure.OPTIMAL, 0, 102, 52, 0, 0))), "2 of 4 failed");
        assertEquals(List.of(), rules(a.evaluate(in(40_000, Pressure.OPTIMAL, 0, 104, 52, 0, 0))), "2 of 6 is still above 25%");
        assertEquals(List.of("error_rate-"), rules(a.evaluate(in(50_000, Pressure.OPTIMAL, 0, 110, 52, 0, 0))), "2 of 12 is not");
        // the failures age out of the window
        a.evaluate(in(60_000, Pressure.OPTIMAL, 0, 110, 55, 0, 0));
        assertEquals(1, a.firing().size());
        assertEquals(List.of("error_rate-"), rules(a.evaluate(in(400_000, Pressure.OPTIMAL, 0, 111, 55, 0, 0))));
    }

    @Test
    void queueAgeFiresWhenTheOldestQueuedJobWaitedTooLong() {
        Alerts a = new Alerts(CFG);
        assertEquals(List.of(), rules(a.evaluate(in(299_999, Pressure.OPTIMAL, 1, 0, 0, 0, 0))));
        assertEquals(List.of("queue_age+"), rules(a.evaluate(in(300_001, Pressure.OPTIMAL, 1, 0, 0, 0, 0))));
        assertEquals(List.of("queue_age-"), rules(a.evaluate(in(300_500, Pressure.OPTIMAL, 0, 0, 0, 0, 0))));
        assertEquals(2, a.recent().size());
        assertEquals("queue_age", a.recent().getFirst().rule());
        assertTrue(!a.recent().getFirst().firing());
    }

    @Test
    void webhookPayloadNamesTheRuleStateAndTimes() {
        var p = AlertWebhook.payload(new Alerts.Alert("queue_age", "server", "warning", "waited", 1_000, 0), "http://127.0.0.1:1");
        assertEquals("firing", p.get("state"));
        assertEquals("1970-01-01T00:00:01Z", p.get("started_at"));
        var r = AlertWebhook.payload(new Alerts.Alert("queue_age", "server", "warning", "waited", 1_000, 5_000), "http://127.0.0.1:1");
        assertEquals("resolved", r.get("state"));
        assertEquals("1970-01-01T00:00:05Z", r.get("at"));
    }
}
