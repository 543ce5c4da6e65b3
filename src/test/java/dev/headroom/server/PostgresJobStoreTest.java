package dev.headroom.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.sql.Connection;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The PostgreSQL job store against a real PostgreSQL (skipped, saying so, where none is
 * installed): migrations run once however many servers start together; concurrent claimers never
 * claim one job twice; priority with aging orders the claims; an expired lease is taken back (with
 * the poison rule) and its old owner can no longer finish the job; a cancel reaches the owner
 * through its renewal.
 */
class PostgresJobStoreTest {
    static PostgresFixture pg;

    @BeforeAll
    static void start() throws Exception {
        pg = PostgresFixture.startOrSkip();
    }

    @AfterAll
    static void stop() throws Exception {
        if (pg != null) pg.close();
    }

    private static PostgresJobStore open() {
        return new PostgresJobStore(PostgresTarget.parse(pg.url()), pg.password);
    }

    private static Job job(String id, int priority, long created) {
        return new Job(id, 0, JobState.queued, priority, "m", "{}", "h", 8, 8, 1000, 0, 8, 1, 0, null, null, false, null, 0, 0, 1, null, false, null, 0,
                created, 0, 0);
    }

    private static void clear(JobStore s) throws Exception {
        try (Connection c = pg.connect()) {
            c.createStatement().execute("TRUNCATE jobs, executions, nodes, result_cache, settings");
        }
    }

    private static JobStore.Owner owner(String node) {
        return new JobStore.Owner(node, UUID.randomUUID().toString());
    }

    @Test
    void urlsWithoutPasswordsOnly() {
        var t = PostgresTarget.parse("postgresql://ann@db.example:6543/queue");
        assertEquals("jdbc:postgresql://db.example:6543/queue", t.jdbcUrl());
        assertEquals("ann", t.user());
        assertEquals(5432, Integer.parseInt(PostgresTarget.parse("postgresql://ann@h/q").jdbcUrl().replaceAll(".*:(\\d+)/.*", "$1")));
        var e = assertThrows(IllegalArgumentException.class, () -> PostgresTarget.parse("postgresql://ann:secret@h:1/q"));
        assertTrue(e.getMessage().contains("PGPASSWORD") && !e.getMessage().contains("secret"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> PostgresTarget.parse("mysql://ann@h/q"));
        assertThrows(IllegalArgumentException.class, () -> PostgresTarget.parse("postgresql://h/q"));
    }

    @Test
    void serversStartingTogetherMigrateOnce() throws Exception {
        List<Thread> ts = new ArrayList<>();
        List<Throwable> errors = new java.util.concurrent.CopyOnWriteArrayList<>();
        for (int i = 0; i < 4; i++) ts.add(Thread.ofPlatform().start(() -> {
            try (PostgresJobStore s = open()) {
                assertEquals(PostgresSchema.MIGRATIONS.size(), s.schemaVersion());
            } catch (Throwable t) {
                errors.add(t);
            }
        }));
        for (Thread t : ts) t.join();
        assertEquals(List.of(), errors);
        try (Connection c = pg.connect(); ResultSet r = c.createStatement().executeQuery("SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_version")) {
            r.next();
            assertEquals(PostgresSchema.MIGRATIONS.size(), r.getInt(1));
            assertEquals(r.getInt(1), r.getInt(2));
        }
        assertEquals(SqliteJobStore.MIGRATIONS.size(), PostgresSchema.MIGRATIONS.size(), "both stores know the same schema versions");
    }

    @Test
    void concurrentClaimersNeverShareAJob() throws Exception {
        try (PostgresJobStore a = open(); PostgresJobStore b = open(); PostgresJobStore c = open()) {
            clear(a);
            long now = System.currentTimeMillis();
            for (int i = 0; i < 300; i++) a.insert(job("j" + i, i % 5, now));
            Map<String, String> claimedBy = new ConcurrentHashMap<>();
            AtomicInteger twice = new AtomicInteger();
            List<Thread> ts = new ArrayList<>();
            int k = 0;
            for (PostgresJobStore s : List.of(a, b, c)) {
                for (int t = 0; t < 2; t++) {
                    JobStore.Owner o = owner("n" + k++);
                    ts.add(Thread.ofPlatform().start(() -> {
                        while (true) {
                            Optional<Job> j = s.claimNext(o, 60_000, System.currentTimeMillis(), q -> Optional.of(q.getFirst().id()));
                            if (j.isEmpty()) {
                                if (s.counts().get(JobState.queued) == 0) return;
                                continue;
                            }
                            if (claimedBy.put(j.get().id(), o.toString()) != null) twice.incrementAndGet();
                            assertTrue(s.finish(j.get().id(), o, JobState.succeeded, null, "r", 1, System.currentTimeMillis()));
                        }
                    }));
                }
            }
            for (Thread t : ts) t.join();
            assertEquals(0, twice.get());
            assertEquals(300, claimedBy.size());
            assertEquals(300L, a.counts().get(JobState.succeeded));
            try (Connection cn = pg.connect(); ResultSet r = cn.createStatement().executeQuery(
                    "SELECT COUNT(*), COUNT(DISTINCT job_id) FROM executions WHERE outcome = 'succeeded'")) {
                r.next();
                assertEquals(300, r.getInt(1));
                assertEquals(300, r.getInt(2));
            }
            assertTrue(Set.copyOf(claimedBy.values()).size() > 1, "only one claimer got work");
        }
    }

    @Test
    void claimsFollowPriorityWithAging() throws Exception {
        try (PostgresJobStore s = open()) {
            clear(s);
            long now = System.currentTimeMillis();
            s.insert(job("new-high", 3, now));
            s.insert(job("old-low", 0, now - 5 * 60_000));   // waited 5 minutes: effective priority 5
            s.insert(job("new-low", 0, now));
            List<String> order = new ArrayList<>();
            JobStore.Owner o = owner("n");
            for (int i = 0; i < 3; i++) order.add(s.claimNext(o, 60_000, now, q -> Optional.of(q.getFirst().id())).orElseThrow().id());
            assertEquals(List.of("old-low", "new-high", "new-low"), order);
            // a pick that declines (the head does not fit) claims nothing
            s.insert(job("big", 0, now));
            assertTrue(s.claimNext(o, 60_000, now, q -> Optional.empty()).isEmpty());
            assertEquals(JobState.queued, s.get("big").orElseThrow().state());
        }
    }

    @Test
    void anExpiredLeaseGoesToAnotherServerAndItsOldOwnerCannotFinish() throws Exception {
        try (PostgresJobStore s = open()) {
            clear(s);
            long now = System.currentTimeMillis();
            s.insert(job("a", 0, now));
            JobStore.Owner dead = owner("dead"), alive = owner("alive");
            assertTrue(s.claim("a", dead, 200, now));
            assertEquals(new JobStore.Recovery(0, 0), s.recover(alive, now, 2), "a live lease is not taken");
            Thread.sleep(400);
            assertEquals(new JobStore.Recovery(1, 0), s.recover(alive, now, 2));
            Job j = s.get("a").orElseThrow();
            assertEquals(JobState.queued, j.state());
            assertEquals(1, j.attempts());
            assertEquals(Map.of(), s.renew(dead, List.of("a"), 60_000, now), "the old owner learns it lost the job");
            assertFalse(s.finish("a", dead, JobState.succeeded, null, "x", 1, now));
            assertTrue(s.claim("a", alive, 60_000, now));
            assertFalse(s.finish("a", dead, JobState.succeeded, null, "x", 1, now), "only the lease holder finishes");
            // a cancel made anywhere reaches the owner through its renewal
            assertEquals(Optional.of(JobState.running), s.cancel("a", now));
            assertEquals(Map.of("a", true), s.renew(alive, List.of("a"), 60_000, now));
            assertTrue(s.finish("a", alive, JobState.cancelled, null, null, 0, now));
            try (Connection c = pg.connect(); ResultSet r = c.createStatement().executeQuery(
                    "SELECT node, outcome FROM executions WHERE job_id = 'a' ORDER BY id")) {
                List<String> rows = new ArrayList<>();
                while (r.next()) rows.add(r.getString(1) + ":" + r.getString(2));
                assertEquals(List.of("dead:lost", "alive:cancelled"), rows);
            }
            // the poison rule: a job whose server died at its second run fails
            s.insert(job("p", 0, now));
            assertTrue(s.claim("p", dead, 1, now));
            Thread.sleep(20);
            s.recover(alive, now, 2);
            assertTrue(s.claim("p", dead, 1, now));
            Thread.sleep(20);
            assertEquals(new JobStore.Recovery(0, 1), s.recover(alive, now, 2));
            assertEquals(JobState.failed, s.get("p").orElseThrow().state());
            assertTrue(s.get("p").orElseThrow().error().contains("2 times in a row"));
        }
    }

    @Test
    void idempotencyKeysAndRegistryAreShared() throws Exception {
        try (PostgresJobStore a = open(); PostgresJobStore b = open()) {
            clear(a);
            long now = System.currentTimeMillis();
            Job j1 = new Job("x1", 0, JobState.queued, 0, "m", "{}", "h", 8, 8, 1, 0, 8, 1, 0, null, null, false, null, 0, 0, 1, "key", false, null, 0, now, 0, 0);
            Job j2 = new Job("x2", 0, JobState.queued, 0, "m", "{}", "h", 8, 8, 1, 0, 8, 1, 0, null, null, false, null, 0, 0, 1, "key", false, null, 0, now, 0, 0);
            assertEquals("x1", a.insert(j1).id());
            assertEquals("x1", b.insert(j2).id());
            a.heartbeat(new JobStore.Node("n1", "n1/1", "http://127.0.0.1:1", "[]", "[\"default\"]", 1, 1, now, 0));
            List<JobStore.Node> nodes = b.nodes();
            assertEquals(1, nodes.size());
            assertEquals("[\"default\"]", nodes.getFirst().models());
            assertTrue(nodes.getFirst().ageMillis() < 5_000);
            b.paused(true);
            assertTrue(a.paused());
        }
    }
}
