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
            try (SessionPool.Lease a = d.session()) {
                first = a.session();
                assertEquals(1, a.number(), "sessions are numbered from 1");
                a.clean();
            }
            assertEquals(1, d.idleSessions());
            try (SessionPool.Lease b = d.session()) {
                assertSame(first, b.session(), "the kept session");
                assertEquals(1, b.number(), "keeps its number");
                assertEquals(0, d.idleSessions());
                // no clean(): the job failed or was stopped
            }
            assertEquals(0, d.idleSessions(), "a failed job's session is closed, not kept");
            try (SessionPool.Lease c = d.session()) {
                assertNotSame(first, c.session(), "a new session");
                assertEquals(2, c.number(), "with a number of its own");
            }
        }
    }

    @Test
    void noMoreAreKeptThanRunAtOnce() {
        try (DeviceSlot d = slot(2)) {
            SessionPool.Lease a = d.session(), b = d.session(), c = d.session();
            for (var l : new SessionPool.Lease[] {a, b, c}) {
                l.clean();
                l.close();
            }
            assertEquals(2, d.idleSessions());
            a.close();   // closing twice changes nothing
            assertEquals(2, d.idleSessions());
        }
    }

    static Job job(String id, String model, int w, int h) {
        return new Job(id, 0, JobState.queued, 0, model, "{}", "", w, h, 0, 0, 256, 1, 0, null, null, false, null, 0, 0, 0, null, false, null, 0, 0, 0, 0);
    }

    /**
     * A job gets the kept session that ran its shape (its plans are built), else one that ran its
     * model; the shapes of idle sessions are the device's warm shapes; a session set aside at
     * admission goes to that job, or back to the pool when the job never took it.
     */
    @Test
    void aJobGetsTheSessionThatRanItsShape() {
        try (DeviceSlot d = slot(3)) {
            Job small = job("s", "rrdb", 64, 64), big = job("b", "rrdb", 512, 512), other = job("o", "srvgg", 64, 64);
            Session ranSmall, ranOther;
            SessionPool.Lease a = d.session(small), c = d.session(other);
            ranSmall = a.session();
            ranOther = c.session();
            for (var l : new SessionPool.Lease[] {a, c}) {
                l.clean();
                l.close();
            }
            assertEquals(java.util.Set.of(DeviceSlot.shape(small), DeviceSlot.shape(other)), d.warmShapes());
            try (SessionPool.Lease l = d.session(job("s2", "rrdb", 64, 64))) {
                assertSame(ranSmall, l.session(), "the session that ran the same shape");
                l.clean();
            }
            try (SessionPool.Lease l = d.session(big)) {
                assertSame(ranSmall, l.session(), "no session ran this shape: the one that ran its model");
                l.clean();
            }
            d.holdSession(job("o2", "srvgg", 64, 64));
            assertEquals(1, d.idleSessions(), "the session that ran srvgg is set aside");
            try (SessionPool.Lease l = d.session(job("x", "srvgg", 64, 64))) {
                assertNotSame(ranOther, l.session(), "another job does not take a session held for o2");
            }
            d.unhold("o2");
            try (SessionPool.Lease l = d.session(job("o3", "srvgg", 64, 64))) {
                assertSame(ranOther, l.session(), "back in the pool after the job for which it was held ended without it");
            }
        }
    }
    /** A CPU device whose sessions count their closes into {@code closes} (keyed by session). */
    private static dev.headroom.runtime.Device counting(java.util.Map<Session, Integer> closes) {
        CpuDevice cpu = new CpuDevice(MemoryOptions.DEFAULT.withBudget(64L << 20));
        return (dev.headroom.runtime.Device) java.lang.reflect.Proxy.newProxyInstance(DeviceSlotSessionsTest.class.getClassLoader(),
                new Class<?>[] {dev.headroom.runtime.Device.class}, (proxy, m, args) -> {
                    Object out = invoke(m, cpu, args);
                    if (!m.getName().equals("openSession")) return out;
                    Session real = (Session) out;
                    Session[] self = new Session[1];
                    self[0] = (Session) java.lang.reflect.Proxy.newProxyInstance(DeviceSlotSessionsTest.class.getClassLoader(), new Class<?>[] {Session.class},
                            (p2, m2, a2) -> {
                                if (m2.getName().equals("close") && m2.getParameterCount() == 0) {
                                    synchronized (closes) {
                                        closes.merge(self[0], 1, Integer::sum);
                                    }
                                }
                                return invoke(m2, real, a2);
                            });
                    synchronized (closes) {
                        closes.put(self[0], 0);
                    }
                    return self[0];
                });
    }

    private static Object invoke(java.lang.reflect.Method m, Object target, Object[] args) throws Throwable {
        try {
            return m.invoke(target, args);
        } catch (java.lang.reflect.InvocationTargetException e) {
            throw e.getCause();
        }
    }

    /**
     * Closing the device closes every session once: the idle ones and those set aside at admission
     * for jobs that never took them; a job ending after that finds nothing held.
     */
    @Test
    void closingTheDeviceClosesHeldAndIdleSessionsOnce() {
        java.util.Map<Session, Integer> closes = new java.util.HashMap<>();
        dev.headroom.runtime.Device dev = counting(closes);
        DeviceSlot d = new DeviceSlot(dev, new Residency(dev, 0), 3);
        // two jobs at once: two sessions, both kept
        SessionPool.Lease a = d.session(job("a", "rrdb", 64, 64)), b = d.session(job("b", "srvgg", 64, 64));
        for (var l : new SessionPool.Lease[] {a, b}) {
            l.clean();
            l.close();
        }
        assertEquals(2, d.idleSessions());
        d.holdSession(job("h", "rrdb", 64, 64));
        assertEquals(1, d.idleSessions(), "one set aside for job h");
        d.close();
        d.unhold("h");   // the job's end, after the device closed
        assertEquals(2, closes.size(), "sessions opened");
        closes.forEach((s, n) -> assertEquals(1, n, "closes of one session"));
    }
}
