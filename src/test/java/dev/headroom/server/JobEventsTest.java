package dev.headroom.server;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;

/** Job events: a listener's failure (the dashboard's) stays with the listener. */
class JobEventsTest {

    @Test
    void aFailingListenerDoesNotReachTheEmitterNorTheOtherListeners() {
        JobEvents events = new JobEvents();
        List<String> seen = new CopyOnWriteArrayList<>();
        events.listen((job, e) -> {
            throw new java.util.ConcurrentModificationException("the dashboard failed");
        });
        events.listen((job, e) -> seen.add(job + " " + e.name()));
        events.emit("j1", "admitted", Map.of());
        events.emit("j1", "succeeded", Map.of());
        assertEquals(List.of("j1 admitted", "j1 succeeded"), seen);
    }
}
