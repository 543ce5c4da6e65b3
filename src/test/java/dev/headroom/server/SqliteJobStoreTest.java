package dev.headroom.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The SQLite store's transactions and sync levels (its class doc); the API tests drive the rest through a server. */
class SqliteJobStoreTest {
    @TempDir
    Path dir;

    private final JobStore.Owner owner = new JobStore.Owner("node", "a");

    @Test
    void aJobsClaimAndEndEachCommitWithTheirExecutionRecord() throws Exception {
        Path db = dir.resolve("headroom.db");
        try (SqliteJobStore store = new SqliteJobStore(db)) {
            store.insert(StoreBench.job("j", 1));
            assertTrue(store.claim("j", owner, 30_000, 2));
            assertFalse(store.claim("j", owner, 30_000, 3), "claimed once");
            assertEquals(List.of("running"), outcomes(db, "j"));
            store.progress("j", 1, 2);
            assertEquals(1, store.get("j").orElseThrow().progressDone());
            assertTrue(store.finish("j", owner, JobState.succeeded, null, "h", 5, 4));
            assertFalse(store.finish("j", owner, JobState.failed, "again", null, 0, 5), "ended once");
            assertEquals(List.of("succeeded"), outcomes(db, "j"));
            assertEquals(JobState.succeeded, store.get("j").orElseThrow().state());
        }
    }

    @Test
    void betweenCallsTheConnectionCommitsWithoutAFullSync() throws Exception {
        try (SqliteJobStore store = new SqliteJobStore(dir.resolve("headroom.db"))) {
            assertEquals(1, store.synchronousLevel(), "NORMAL after opening");
            store.insert(StoreBench.job("j", 1));
            assertEquals(1, store.synchronousLevel(), "NORMAL again after an acknowledged insert");
            assertEquals(Optional.of(JobState.cancelled), store.cancel("j", 2));
            store.paused(true);
            assertTrue(store.paused());
            assertEquals(1, store.synchronousLevel());
            assertEquals(2, store.synchronousLevel(() -> store.insert(StoreBench.job("k", 3))), "FULL while a job is accepted");
            assertEquals(2, store.synchronousLevel(() -> store.priority("k", 5)));
            assertEquals(1, store.synchronousLevel(() -> store.claim("k", owner, 30_000, 4)), "NORMAL for the server's own work");
        }
    }

    @Test
    void aFailedTransactionLeavesNothingBehindAndTheStoreGoesOn() throws Exception {
        Path db = dir.resolve("headroom.db");
        try (SqliteJobStore store = new SqliteJobStore(db)) {
            store.insert(StoreBench.job("j", 1));
            try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + db); Statement s = c.createStatement()) {
                // the claim's second statement (its execution record) fails: the first (running) must roll back with it
                s.execute("CREATE TRIGGER no_records BEFORE INSERT ON executions BEGIN SELECT RAISE(ABORT, 'no records today'); END");
            }
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> store.claim("j", owner, 30_000, 2));
            assertTrue(e.getMessage().contains("no records today"), e.getMessage());
            assertEquals(JobState.queued, store.get("j").orElseThrow().state(), "rolled back whole");
            try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + db); Statement s = c.createStatement()) {
                s.execute("DROP TRIGGER no_records");
            }
            assertTrue(store.claim("j", owner, 30_000, 3), "the connection is back in autocommit and claims again");
            assertEquals(List.of("running"), outcomes(db, "j"));
        }
    }

    @Test
    void renewalsAndRecoveryCommitTogether() throws Exception {
        Path db = dir.resolve("headroom.db");
        try (SqliteJobStore store = new SqliteJobStore(db)) {
            for (String id : new String[] {"a", "b"}) {
                store.insert(StoreBench.job(id, 1));
                store.claim(id, owner, 30_000, 2);
            }
            store.cancel("b", 3);
            assertEquals(Map.of("a", false, "b", true), store.renew(owner, List.of("a", "b", "gone"), 30_000, 4));
            JobStore.Recovery r = store.recover(new JobStore.Owner("node", "restarted"), 5, 2);
            assertEquals(2, r.requeued());
            assertEquals(List.of("lost"), outcomes(db, "a"));
            assertEquals(1, store.get("a").orElseThrow().attempts());
            assertEquals(JobState.queued, store.get("a").orElseThrow().state());
            assertEquals(JobState.cancelled, store.get("b").orElseThrow().state(), "its cancel still holds");
        }
    }

    @Test
    void readsDoNotWaitForAWriteUnderWay() throws Exception {
        try (SqliteJobStore store = new SqliteJobStore(dir.resolve("headroom.db"))) {
            store.insert(StoreBench.job("j", 1));
            java.util.concurrent.CountDownLatch holding = new java.util.concurrent.CountDownLatch(1), release = new java.util.concurrent.CountDownLatch(1);
            // a writer holds the write lock (as a claim or an end under way does) until released
            Thread writer = Thread.ofPlatform().start(() -> store.synchronousLevel(() -> {
                holding.countDown();
                try {
                    release.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }));
            try {
                assertTrue(holding.await(10, java.util.concurrent.TimeUnit.SECONDS));
                var reads = java.util.concurrent.CompletableFuture.supplyAsync(() -> store.get("j").orElseThrow().state() + " "
                        + store.counts().get(JobState.queued) + " " + store.queued(8).size() + " " + store.paused() + " " + store.list(null, 0, 8).size());
                assertEquals("queued 1 1 false 1", reads.get(10, java.util.concurrent.TimeUnit.SECONDS), "read while the write lock is held");
            } finally {
                release.countDown();
                writer.join();
            }
            assertTrue(store.claim("j", owner, 30_000, 2));
            assertEquals(JobState.running, store.get("j").orElseThrow().state(), "a read after a write sees it");
        }
    }

    private static List<String> outcomes(Path db, String job) throws Exception {
        List<String> out = new ArrayList<>();
        try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + db); Statement s = c.createStatement();
                ResultSet r = s.executeQuery("SELECT outcome FROM executions WHERE job_id = '" + job + "' ORDER BY id")) {
            while (r.next()) out.add(r.getString(1));
        }
        return out;
    }
}
