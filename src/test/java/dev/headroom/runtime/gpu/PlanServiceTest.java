package dev.headroom.runtime.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * The device's plan service as bookkeeping, on a fake native side (no GPU): one build per key for
 * every session, a graph lent to one borrower at a time, threads, handles and idle graphs within
 * their bounds, the handles' memory reported, and close as an audit that names what it kept.
 */
class PlanServiceTest {
    /** Handles are numbers, graphs are strings; records what was made and destroyed, and which handles are in use now. */
    static final class Fake implements PlanService.Native<String> {
        final AtomicInteger made = new AtomicInteger();
        final List<Object> destroyedHandles = java.util.Collections.synchronizedList(new ArrayList<>());
        final List<String> destroyedGraphs = java.util.Collections.synchronizedList(new ArrayList<>());
        /** Graphs and handles destroyed, in order ("graph g", "handle 1"). */
        final List<String> order = java.util.Collections.synchronizedList(new ArrayList<>());
        final Set<Object> inUse = ConcurrentHashMap.newKeySet();
        final AtomicInteger mostInUse = new AtomicInteger();
        volatile long free = 1_000_000;

        @Override
        public Object createHandle() {
            free -= 1000;   // what cudnnCreate takes on the device, as the service sees it
            return made.incrementAndGet();
        }

        @Override
        public void destroyHandle(Object handle) {
            destroyedHandles.add(handle);
            order.add("handle " + handle);
        }

        @Override
        public void destroy(String graph) {
            destroyedGraphs.add(graph);
            order.add("graph " + graph);
        }

        @Override
        public long freeBytes() {
            return free;
        }

        /** Marks {@code h} in use for {@code millis}; fails if another thread uses it at the same time. */
        void use(Object h, long millis) {
            if (!inUse.add(h)) throw new AssertionError("handle " + h + " used by two threads at once");
            mostInUse.accumulateAndGet(inUse.size(), Math::max);
            try {
                Thread.sleep(millis);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } finally {
                inUse.remove(h);
            }
        }
    }

    private static PlanService<String> service(Fake f, int threads, int handles, int idle, long closeWaitMillis) {
        return new PlanService<>("test:0", f, threads, handles, idle, closeWaitMillis * 1_000_000);
    }

    @Test
    void sessionsAskingForOneShapeShareOneBuildAndItsGraphIsLentToOneBorrowerAtATime() throws Exception {
        Fake f = new Fake();
        PlanService<String> s = service(f, 2, 2, 8, 1000);
        AtomicInteger builds = new AtomicInteger();
        ExecutorService sessions = Executors.newFixedThreadPool(8);
        List<Future<CompletableFuture<Object>>> asks = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            asks.add(sessions.submit(() -> s.background("shape A", h -> {
                builds.incrementAndGet();
                f.use(h, 50);
                s.pool("A@0", "graph A");
                return "origin 0";
            })));
        }
        CompletableFuture<Object> first = asks.getFirst().get();
        for (var a : asks) assertSame(first, a.get(), "every session joins the one build");
        assertEquals("origin 0", first.get(5, TimeUnit.SECONDS));
        assertEquals(1, builds.get(), "built once for the device");
        assertSame(first, s.known("shape A"));
        String g = s.lend("A@0");
        assertEquals("graph A", g);
        assertNull(s.lend("A@0"), "lent to one session at a time");
        s.giveBack("A@0", g);
        assertEquals("graph A", s.lend("A@0"), "given back, it is lent again without a build");
        assertEquals(1L, s.stats().get("background_builds"));
        assertEquals(2L, s.stats().get("lends"));
        sessions.shutdown();
        s.giveBack("A@0", g);
        s.close();
    }

    @Test
    void threadsAndHandlesStayWithinTheirBoundsAndNoHandleIsUsedByTwoThreadsAtOnce() throws Exception {
        Fake f = new Fake();
        PlanService<String> s = service(f, 3, 4, 64, 1000);
        Set<String> workerThreads = ConcurrentHashMap.newKeySet();
        List<CompletableFuture<Object>> builds = new ArrayList<>();
        for (int i = 0; i < 24; i++) {
            int k = i;
            builds.add(s.background("shape " + k, h -> {
                workerThreads.add(Thread.currentThread().getName() + "#" + Thread.currentThread().threadId());
                f.use(h, 5);
                return k;
            }));
        }
        // sessions build on their own threads meanwhile, from the same handles
        ExecutorService sessions = Executors.newFixedThreadPool(6);
        List<Future<String>> own = new ArrayList<>();
        for (int i = 0; i < 30; i++) {
            int k = i;
            own.add(sessions.submit(() -> s.build("own " + k, h -> {
                f.use(h, 3);
                return "own graph " + k;
            })));
        }
        for (var b : builds) b.get(10, TimeUnit.SECONDS);
        for (var o : own) s.giveBack(o.get().replace(" graph", ""), o.get());
        sessions.shutdown();
        assertTrue(f.made.get() <= 4, f.made.get() + " handles made, bound 4");
        assertTrue(f.mostInUse.get() <= 4, f.mostInUse.get() + " handles in use at once, bound 4");
        assertTrue(workerThreads.size() <= 3, "worker threads " + workerThreads);
        assertTrue((int) s.stats().get("threads_now") <= 3, s.stats().toString());
        assertEquals((long) f.made.get() * 1000, s.stats().get("handle_bytes_outside_ledger"), "each handle's device memory, measured around its creation");
        assertEquals(30L, s.stats().get("builds"));
        s.close();
        assertEquals(f.made.get(), f.destroyedHandles.size(), "a clean close destroys every handle");
        assertEquals(30, f.destroyedGraphs.size(), "and every idle graph");
    }

    @Test
    void idleGraphsAreBoundedAndTheLeastRecentlyGivenBackIsDestroyed() {
        Fake f = new Fake();
        PlanService<String> s = service(f, 1, 1, 2, 1000);
        String a = s.build("a", h -> "graph a"), b = s.build("b", h -> "graph b"), c = s.build("c", h -> "graph c");
        s.giveBack("a", a);
        s.giveBack("b", b);
        assertEquals(List.of(), f.destroyedGraphs);
        s.giveBack("c", c);
        assertEquals(List.of("graph a"), f.destroyedGraphs, "the oldest idle graph goes first");
        assertNull(s.lend("a"));
        assertEquals("graph b", s.lend("b"));
        assertEquals(1L, s.stats().get("evicted"));
        assertEquals(1, s.stats().get("idle"));
        assertEquals(1, s.stats().get("lent"));
        IllegalStateException twice = assertThrows(IllegalStateException.class, () -> s.giveBack("c", c));
        assertTrue(twice.getMessage().contains("not lent"), twice.getMessage());
        s.giveBack("b", b);
        s.close();
    }

    @Test
    void closeNamesTheGraphsStillLentAndKeepsTheHandlesTheirPlansWereMadeWith() {
        Fake f = new Fake();
        PlanService<String> s = service(f, 1, 2, 8, 1000);
        String g = s.build("conv 3x3 64>64 at 256", h -> "graph");
        IllegalStateException e = assertThrows(IllegalStateException.class, s::close);
        assertTrue(e.getMessage().contains("1 graph(s) still lent") && e.getMessage().contains("conv 3x3 64>64 at 256"), e.getMessage());
        assertTrue(e.getMessage().contains("1 cuDNN handle(s) (1000 bytes"), e.getMessage());
        assertEquals(List.of(), f.destroyedHandles, "a plan keeps its handle: not destroyed under a lent graph");
        s.giveBack("conv 3x3 64>64 at 256", g);
        assertEquals(List.of("graph"), f.destroyedGraphs, "given back after close, it is destroyed at once");
        assertThrows(IllegalStateException.class, () -> s.build("later", h -> "x"), "closed: no more builds");
    }

    /** A build that says it is inside, then runs until {@code release}, deaf to interrupts as a native finalisation is. */
    private static java.util.function.Function<Object, Object> stuckUntil(CountDownLatch inside, CountDownLatch release) {
        return h -> {
            inside.countDown();
            while (true) {
                try {
                    if (release.await(10, TimeUnit.SECONDS)) return "done";
                } catch (InterruptedException ignored) {
                    // keeps going, as cuDNN would
                }
            }
        };
    }

    @Test
    void closeWaitsForABuildInsideCuDnnAndSaysSoWhenItDoesNotEnd() throws Exception {
        Fake f = new Fake();
        PlanService<String> s = service(f, 2, 2, 8, 200);
        CountDownLatch inside = new CountDownLatch(1), release = new CountDownLatch(1);
        s.background("slow shape", stuckUntil(inside, release));
        assertTrue(inside.await(5, TimeUnit.SECONDS));
        long t0 = System.nanoTime();
        IllegalStateException e = assertThrows(IllegalStateException.class, s::close);
        long waited = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(waited >= 150, "waited " + waited + " ms for the build");
        assertTrue(e.getMessage().contains("1 build(s) still inside cuDNN after 200 ms") && e.getMessage().contains("slow shape"), e.getMessage());
        assertTrue(e.getMessage().contains("were kept"), e.getMessage());
        assertEquals(List.of(), f.destroyedHandles, "the handle the build is using is not destroyed under it");
        release.countDown();
    }

    @Test
    void closeKeepsTheHandleABuildOnASessionsThreadIsUsingAndSaysSo() throws Exception {
        Fake f = new Fake();
        PlanService<String> s = service(f, 1, 2, 8, 100);
        CountDownLatch inside = new CountDownLatch(1), release = new CountDownLatch(1);
        ExecutorService session = Executors.newSingleThreadExecutor();
        Future<String> built = session.submit(() -> s.build("conv at 512", h -> {
            inside.countDown();
            try {
                release.await(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return "graph";
        }));
        assertTrue(inside.await(5, TimeUnit.SECONDS));
        IllegalStateException e = assertThrows(IllegalStateException.class, s::close, "a session still building: close is no clean close");
        assertTrue(e.getMessage().contains("1 build(s) on sessions' threads still running") && e.getMessage().contains("were kept"), e.getMessage());
        assertEquals(List.of(), f.destroyedHandles, "the handle the session's build is finalising on is not destroyed under it");
        release.countDown();
        s.giveBack("conv at 512", built.get(5, TimeUnit.SECONDS));
        assertEquals(List.of("graph"), f.destroyedGraphs, "given back after close, it is destroyed at once");
        assertEquals(List.of("graph graph", "handle 1"), f.order, "the late build's graph, the last back, then takes the kept handle with it");
        session.shutdown();
    }

    @Test
    void theLastGraphGivenBackAfterAnAuditedCloseDestroysTheKeptHandlesOnceAfterTheGraphs() {
        Fake f = new Fake();
        PlanService<String> s = service(f, 1, 2, 8, 1000);
        String[] inner = new String[1];
        String outer = s.build("a", h -> {
            inner[0] = s.build("b", h2 -> "graph b");   // a second handle while the first is in use
            return "graph a";
        });
        IllegalStateException e = assertThrows(IllegalStateException.class, s::close);
        assertTrue(e.getMessage().contains("2 graph(s) still lent") && e.getMessage().contains("2 cuDNN handle(s)"), e.getMessage());
        s.giveBack("a", outer);
        assertEquals(List.of("graph graph a"), f.order, "one graph still lent: the handles stay");
        assertEquals(0L, s.stats().get("released_after_close"));
        s.giveBack("b", inner[0]);
        assertEquals(List.of("graph graph a", "graph graph b"), f.order.subList(0, 2));
        assertEquals(Set.of(1, 2), Set.copyOf(f.destroyedHandles), "the last one back destroys both kept handles, after every graph");
        assertEquals(4, f.order.size(), f.order.toString());
        assertEquals(1L, s.stats().get("released_after_close"));
        assertEquals(0, s.stats().get("handles"));
        assertThrows(IllegalStateException.class, () -> s.giveBack("b", inner[0]), "given back twice");
        assertEquals(2, f.destroyedHandles.size(), "destroyed once");
    }

    @Test
    void aBuildThatEndsAfterAnAuditedCloseIsTheLastBackAndDestroysTheKeptHandle() throws Exception {
        Fake f = new Fake();
        PlanService<String> s = service(f, 1, 1, 8, 100);
        CountDownLatch inside = new CountDownLatch(1), release = new CountDownLatch(1);
        var stuck = stuckUntil(inside, release);
        CompletableFuture<Object> late = s.background("slow shape", h -> {
            Object r = stuck.apply(h);
            s.pool("slow@0", "graph slow");   // what a first-choice build leaves idle; after close, destroyed at once
            return r;
        });
        assertTrue(inside.await(5, TimeUnit.SECONDS));
        IllegalStateException e = assertThrows(IllegalStateException.class, s::close);
        assertTrue(e.getMessage().contains("until the last of these comes back"), e.getMessage());
        assertEquals(List.of(), f.order);
        release.countDown();
        assertEquals("done", late.get(5, TimeUnit.SECONDS));
        assertEquals(List.of("graph graph slow", "handle 1"), f.order, "the late build's graph, then the handle it was finalised on");
        assertEquals(1L, s.stats().get("released_after_close"));
    }

    @Test
    void graphsGivenBackAtOnceAfterAnAuditedCloseDestroyTheKeptHandleExactlyOnce() throws Exception {
        ExecutorService sessions = Executors.newFixedThreadPool(8);
        try {
            for (int round = 0; round < 20; round++) {
                Fake f = new Fake();
                PlanService<String> s = service(f, 1, 1, 8, 100);
                List<String> graphs = new ArrayList<>();
                for (int i = 0; i < 16; i++) {
                    int k = i;
                    graphs.add(s.build("k" + k, h -> "g" + k));
                }
                assertThrows(IllegalStateException.class, s::close);
                CountDownLatch go = new CountDownLatch(1);
                List<Future<?>> backs = new ArrayList<>();
                for (String g : graphs) {
                    backs.add(sessions.submit(() -> {
                        go.await();
                        s.giveBack("k" + g.substring(1), g);
                        return null;
                    }));
                }
                go.countDown();
                for (var b : backs) b.get(5, TimeUnit.SECONDS);
                assertEquals(List.of(1), f.destroyedHandles, "round " + round + ": the kept handle destroyed once");
                assertEquals(List.of("handle 1"), f.order.subList(16, f.order.size()), "round " + round + ": after all 16 graphs " + f.order);
                assertEquals(1L, s.stats().get("released_after_close"));
            }
        } finally {
            sessions.shutdown();
        }
    }

    @Test
    void closeFailsTheBuildsItNeverStartedSoTheirAskersDoNotWaitForever() throws Exception {
        Fake f = new Fake();
        PlanService<String> s = service(f, 1, 1, 8, 100);
        CountDownLatch inside = new CountDownLatch(1), release = new CountDownLatch(1);
        s.background("slow shape", stuckUntil(inside, release));
        CompletableFuture<Object> queued = s.background("queued shape", h -> "never");
        assertTrue(inside.await(5, TimeUnit.SECONDS));
        assertThrows(IllegalStateException.class, s::close);
        assertTrue(queued.isDone(), "a build dropped from the queue at close completes");
        java.util.concurrent.ExecutionException e = assertThrows(java.util.concurrent.ExecutionException.class, () -> queued.get(1, TimeUnit.SECONDS));
        assertTrue(e.getCause().getMessage().contains("closed before the build of queued shape started"), e.getCause().getMessage());
        release.countDown();
    }

    @Test
    void aBuildThatCouldNotRunIsForgottenSoALaterAskTriesAgain() throws Exception {
        Fake f = new Fake();
        PlanService<String> s = service(f, 1, 1, 8, 1000);
        CompletableFuture<Object> failed = s.background("k", h -> {
            throw new IllegalStateException("out of memory making a handle");
        });
        assertThrows(java.util.concurrent.ExecutionException.class, () -> failed.get(5, TimeUnit.SECONDS));
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (s.known("k") != null && System.nanoTime() < deadline) Thread.sleep(5);
        assertNull(s.known("k"));
        assertEquals("again", s.background("k", h -> "again").get(5, TimeUnit.SECONDS));
        s.close();
    }

    @Test
    void boundsBelowOneAreRefusedInOneLine() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> service(new Fake(), 0, 1, 1, 10));
        assertTrue(e.getMessage().contains("threads 0") && e.getMessage().lines().count() == 1, e.getMessage());
        int threads = PlanService.defaultThreads();
        assertTrue(threads >= 1 && threads <= 8, "default worker threads " + threads + ", want 1 to 8");
    }
}
