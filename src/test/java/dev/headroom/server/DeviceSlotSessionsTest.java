package dev.headroom.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.headroom.runtime.Residency;
import dev.headroom.runtime.Session;
import dev.headroom.runtime.cpu.CpuDevice;
import dev.headroom.runtime.memory.MemoryOptions;
import org.junit.jupiter.api.Test;

/**
 * Sessions kept between jobs: a job that ended well gives its session to the next job (so its
 * convolution plans are built once), one that failed or stopped does not, and no more are kept than
 * run at once.
 */
class DeviceSlotSessionsTest {

    static DeviceSlot slot(int maxRunning) {
        CpuDevice cpu = new CpuDevice(MemoryOptions.DEFAULT.withBudget(64L << 20));
        return new DeviceSlot(cpu, new Residency(cpu, 0), maxRunning);
    }

    @Test
    void aCleanJobsSessionGoesToTheNextJobAFailedOnesDoesNot() {
        try (DeviceSlot d = slot(2)) {
            Session first;
            try (DeviceSlot.SessionLease a = d.session()) {
                first = a.session();
                a.clean();
            }
            assertEquals(1, d.idleSessions());
            try (DeviceSlot.SessionLease b = d.session()) {
                assertSame(first, b.session(), "the kept session");
                assertEquals(0, d.idleSessions());
                // no clean(): the job failed or was stopped
            }
            assertEquals(0, d.idleSessions(), "a failed job's session is closed, not kept");
            try (DeviceSlot.SessionLease c = d.session()) {
                assertNotSame(first, c.session(), "a new session");
            }
        }
    }

    @Test
    void noMoreAreKeptThanRunAtOnce() {
        try (DeviceSlot d = slot(2)) {
            DeviceSlot.SessionLease a = d.session(), b = d.session(), c = d.session();
            for (var l : new DeviceSlot.SessionLease[] {a, b, c}) {
                l.clean();
                l.close();
            }
            assertEquals(2, d.idleSessions());
            a.close();   // closing twice changes nothing
            assertEquals(2, d.idleSessions());
        }
    }
}
