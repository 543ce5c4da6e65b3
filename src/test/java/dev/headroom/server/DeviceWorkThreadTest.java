package dev.headroom.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * Device work asked for by an HTTP request (a virtual thread) runs on a platform thread, since
 * CUDA's current context belongs to the OS thread and a virtual thread may change carriers between
 * two driver calls; from a platform thread it runs in place. Results and exceptions come back as they were.
 */
class DeviceWorkThreadTest {

    @Test
    void fromAVirtualThreadTheWorkRunsOnAPlatformThread() throws Exception {
        AtomicReference<Object> seen = new AtomicReference<>();
        Thread v = Thread.ofVirtual().start(() -> {
            try {
                seen.set(DeviceSlot.onPlatformThread(() -> Thread.currentThread().isVirtual() ? "virtual" : "platform"));
            } catch (Exception e) {
                seen.set(e);
            }
        });
        v.join();
        assertEquals("platform", seen.get());

        IOException thrown = new IOException("disk gone");
        Thread w = Thread.ofVirtual().start(() -> {
            try {
                DeviceSlot.onPlatformThread(() -> {
                    throw thrown;
                });
            } catch (Exception e) {
                seen.set(e);
            }
        });
        w.join();
        assertSame(thrown, seen.get(), "the work's exception itself, not a wrapper");
    }

    @Test
    void fromAPlatformThreadTheWorkRunsInPlace() throws Exception {
        Thread here = Thread.currentThread();
        assertFalse(here.isVirtual());
        assertTrue(DeviceSlot.onPlatformThread(() -> Thread.currentThread() == here));
    }
}
