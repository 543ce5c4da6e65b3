package dev.headroom.server;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * {@link JobStore} in SQLite (DATA/headroom.db) through sqlite-jdbc, in WAL mode. Writes go through
 * one connection under this object's lock: SQLite serialises writers anyway, and one process owns the
 * file. Reads a client or the scheduler makes (a job's status, lists, counts, the queue, paused) go
 * through a second, read-only connection under a lock of its own: WAL lets it read the last commit while
 * a write is under way, so a status poll does not wait behind another job's claim or end. A read inside
 * a write's transaction uses the write connection.
 *
 * <p>Durability. Every commit survives the server's crash or kill -9: it is in the WAL, which the
 * OS holds. What the server has answered a client for commits with {@code synchronous=FULL}
 * ({@link #acknowledged}), so it survives a power loss or an OS crash too: a job accepted with 202,
 * a cancel, a new priority, a pause. Everything else commits with {@code synchronous=NORMAL}, synced
 * by the next full commit or checkpoint: what the server does on its own (claims, progress, leases,
 * ends, the result cache) may roll back to that sync after a power loss, and recovery then runs such a
 * job again, as after any crash. A full sync costs a disk flush while every other thread of the
 * server waits on this lock: with every commit full, a job with four progress writes made nine, now
 * one (scripts/bench/job-store --syncs). Statements that belong together commit as one transaction
 * ({@link #transaction}): a claim and its execution record, an end and its record, a recovery.
 *
 * <p>Schema changes are numbered migrations ({@link #MIGRATIONS}), applied in order in one
 * transaction by {@link SchemaMigrations} and recorded in {@code schema_version}; a database from a
 * newer headroom is refused rather than guessed at.
 */
public final class SqliteJobStore implements JobStore {

    /** Migration n (from 1) brings the schema from version n-1 to n. Append, never edit. */
    static final List<String[]> MIGRATIONS = List.<String[]>of(new String[] {
            """
            CREATE TABLE jobs (
              seq INTEGER PRIMARY KEY AUTOINCREMENT,
              id TEXT NOT NULL UNIQUE,
              state TEXT NOT NULL,
              priority INTEGER NOT NULL,
              model TEXT NOT NULL,
              params TEXT NOT NULL,
              input_hash TEXT NOT NULL,
              width INTEGER NOT NULL,
              height INTEGER NOT NULL,
              peak_bytes INTEGER NOT NULL,
              tile INTEGER NOT NULL,
              batch INTEGER NOT NULL,
              attempts INTEGER NOT NULL DEFAULT 0,
              error TEXT,
              cache_key TEXT,
              cached INTEGER NOT NULL DEFAULT 0,
              result_hash TEXT,
              result_bytes INTEGER NOT NULL DEFAULT 0,
              progress_done INTEGER NOT NULL DEFAULT 0,
              progress_total INTEGER NOT NULL DEFAULT 0,
              idempotency_key TEXT UNIQUE,
              cancel_requested INTEGER NOT NULL DEFAULT 0,
              owner TEXT,
              lease_until INTEGER NOT NULL DEFAULT 0,
              created INTEGER NOT NULL,
              started INTEGER NOT NULL DEFAULT 0,
              finished INTEGER NOT NULL DEFAULT 0)""",
            "CREATE INDEX jobs_queue ON jobs(state, priority DESC, seq)",
            "CREATE TABLE result_cache (key TEXT PRIMARY KEY, result_hash TEXT NOT NULL, bytes INTEGER NOT NULL, last_used INTEGER NOT NULL)",
            "CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)"},
            // 2: weights are shared by the jobs of a model (residency), so a job's weights are planned apart from its activations
            new String[] {"ALTER TABLE jobs ADD COLUMN weight_bytes INTEGER NOT NULL DEFAULT 0"}, new String[] {
            // 3: the node registry and one execution record per run of a job (fleets; one node here)
            "CREATE TABLE nodes (name TEXT PRIMARY KEY, owner TEXT NOT NULL, url TEXT, devices TEXT NOT NULL, models TEXT NOT NULL, "
                    + "running INTEGER NOT NULL, free_slots INTEGER NOT NULL, started INTEGER NOT NULL, heartbeat INTEGER NOT NULL)",
            "CREATE TABLE executions (id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, attempt INTEGER NOT NULL, node TEXT NOT NULL, "
                    + "owner TEXT NOT NULL, started INTEGER NOT NULL, finished INTEGER NOT NULL DEFAULT 0, outcome TEXT NOT NULL)",
            "CREATE INDEX executions_job ON executions(job_id)"}, new String[] {
            // 4: the claim order of PostgresJobStore.QUEUE_ORDER, kept alike in both stores
            "CREATE INDEX jobs_claim_order ON jobs ((priority * 60000.0 - created) DESC, seq) WHERE state = 'queued'"});

    static final String COLUMNS = "id, seq, state, priority, model, params, input_hash, width, height, peak_bytes, weight_bytes, tile, batch, attempts, error, "
            + "cache_key, cached, result_hash, result_bytes, progress_done, progress_total, idempotency_key, cancel_requested, owner, lease_until, "
            + "created, started, finished";

    private final Connection db;
    /** Reads outside writes, under {@link #readLock}: a connection is not for two threads at once. */
    private final Connection reads;
    private final Object readLock = new Object();
    /** SQLite's synchronous level now, read back after each change (1 NORMAL, 2 FULL), and the level the last write ran under. */
    private int level, lastWriteLevel;

    public SqliteJobStore(Path file) {
        String url = "jdbc:sqlite:" + file.toAbsolutePath();
        Connection w = null;
        try {
            db = w = DriverManager.getConnection(url);
            try (Statement s = db.createStatement()) {
                s.execute("PRAGMA journal_mode=WAL");
                s.execute("PRAGMA busy_timeout=5000");
            }
            pragma("synchronous=NORMAL");
            migrate();
            reads = DriverManager.getConnection(url);
            try (Statement s = reads.createStatement()) {
                s.execute("PRAGMA busy_timeout=5000");
                s.execute("PRAGMA query_only=1");
            }
        } catch (SQLException | RuntimeException e) {
            if (w != null) {
                try {
                    w.close();
                } catch (SQLException ignored) {
                    // the open failed already; that is what the caller hears of
                }
            }
            if (e instanceof RuntimeException r) throw r;   // already says what is wrong (a newer schema, a failed migration)
            throw new IllegalStateException("cannot open the job store " + file + ": " + e.getMessage(), e);
        }
    }

    /** The schema version the file is at now. */
    public synchronized int schemaVersion() {
        try (Statement s = db.createStatement()) {
            return SchemaMigrations.version(s);
        } catch (SQLException e) {
            throw fail(e);
        }
    }

    private void migrate() throws SQLException {
        SchemaMigrations.migrate(db, MIGRATIONS, null, "use a newer headroom or another --data folder");
    }

    private static IllegalStateException fail(SQLException e) {
        return new IllegalStateException("job store: " + e.getMessage(), e);
    }

    @Override
    public synchronized Job insert(Job j) {
        return acknowledged(() -> insertNow(j));
    }

    private Job insertNow(Job j) {
        try {
            if (j.idempotencyKey() != null) {
                Optional<Job> known = one(db, "SELECT " + COLUMNS + " FROM jobs WHERE idempotency_key = ?", j.idempotencyKey());
                if (known.isPresent()) return known.get();
            }
            try (PreparedStatement p = db.prepareStatement("INSERT INTO jobs (id, state, priority, model, params, input_hash, width, height, peak_bytes, weight_bytes, "
                    + "tile, batch, cache_key, cached, result_hash, result_bytes, progress_done, progress_total, idempotency_key, created, started, finished) "
                    + "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")) {
                Object[] v = {j.id(), j.state().name(), j.priority(), j.model(), j.params(), j.inputHash(), j.width(), j.height(), j.peakBytes(), j.weightBytes(),
                        j.tile(), j.batch(), j.cacheKey(), j.cached() ? 1 : 0, j.resultHash(), j.resultBytes(), j.progressDone(), j.progressTotal(),
                        j.idempotencyKey(), j.created(), j.started(), j.finished()};
                for (int i = 0; i < v.length; i++) p.setObject(i + 1, v[i]);
                lastWriteLevel = level;
                p.executeUpdate();
            }
            return getInWrite(j.id()).orElseThrow();
        } catch (SQLException e) {
            throw fail(e);
        }
    }

    @Override
    public Optional<Job> get(String id) {
        synchronized (readLock) {
            return one(reads, "SELECT " + COLUMNS + " FROM jobs WHERE id = ?", id);
        }
    }

    /** A job as the write connection sees it: inside a write's transaction. */
    private Optional<Job> getInWrite(String id) {
        return one(db, "SELECT " + COLUMNS + " FROM jobs WHERE id = ?", id);
    }

    @Override
    public List<Job> list(JobState state, long afterSeq, int limit) {
        String sql = "SELECT " + COLUMNS + " FROM jobs WHERE seq > ?" + (state == null ? "" : " AND state = ?") + " ORDER BY seq LIMIT ?";
        synchronized (readLock) {
            return state == null ? many(reads, sql, afterSeq, limit) : many(reads, sql, afterSeq, state.name(), limit);
        }
    }

    @Override
    public List<Job> queued(int limit) {
        synchronized (readLock) {
            return many(reads, "SELECT " + COLUMNS + " FROM jobs WHERE state = 'queued' ORDER BY priority DESC, seq LIMIT ?", limit);
        }
    }

    @Override
    public synchronized boolean claim(String id, Owner owner, long leaseMillis, long now) {
        return transaction(() -> {
            if (update("UPDATE jobs SET state = 'running', owner = ?, lease_until = ?, started = ? WHERE id = ? AND state = 'queued'",
                    owner.toString(), now + leaseMillis, now, id) != 1) return false;
            update("INSERT INTO executions (job_id, attempt, node, owner, started, outcome) SELECT id, attempts, ?, ?, ?, 'running' FROM jobs WHERE id = ?",
                    owner.node(), owner.toString(), now, id);
            return true;
        });
    }

    @Override
    public synchronized Map<String, Boolean> renew(Owner owner, java.util.Collection<String> ids, long leaseMillis, long now) {
        return transaction(() -> {
            Map<String, Boolean> held = new java.util.HashMap<>();
            for (String id : ids) {
                if (update("UPDATE jobs SET lease_until = ? WHERE id = ? AND owner = ? AND state = 'running'", now + leaseMillis, id, owner.toString()) == 1) {
                    held.put(id, getInWrite(id).map(Job::cancelRequested).orElse(false));
                }
            }
            return held;
        });
    }

    @Override
    public synchronized void progress(String id, int done, int total) {
        update("UPDATE jobs SET progress_done = ?, progress_total = ? WHERE id = ? AND state = 'running'", done, total, id);
    }

    @Override
    public synchronized boolean finish(String id, Owner owner, JobState to, String error, String resultHash, long resultBytes, long now) {
        return transaction(() -> {
            if (update("UPDATE jobs SET state = ?, error = ?, result_hash = ?, result_bytes = ?, finished = ?, owner = NULL WHERE id = ? "
                    + "AND state = 'running' AND owner = ?", to.name(), error, resultHash, resultBytes, now, id, owner.toString()) != 1) return false;
            update("UPDATE executions SET outcome = ?, finished = ? WHERE job_id = ? AND owner = ? AND outcome = 'running'", to.name(), now, id, owner.toString());
            return true;
        });
    }

    @Override
    public synchronized Optional<JobState> cancel(String id, long now) {
        return acknowledged(() -> transaction(() -> {
            if (update("UPDATE jobs SET state = 'cancelled', finished = ? WHERE id = ? AND state = 'queued'", now, id) == 1) {
                return Optional.of(JobState.cancelled);
            }
            update("UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND state = 'running'", id);
            return getInWrite(id).map(Job::state);
        }));
    }

    @Override
    public synchronized boolean priority(String id, int priority) {
        return acknowledged(() -> update("UPDATE jobs SET priority = ? WHERE id = ? AND state = 'queued'", priority, id) == 1);
    }

    @Override
    public synchronized void requeue(String id, Owner owner) {
        transaction(() -> {
            if (update("UPDATE jobs SET state = 'queued', owner = NULL, lease_until = 0, progress_done = 0 WHERE id = ? AND state = 'running' "
                    + "AND owner = ?", id, owner.toString()) == 1) {
                update("UPDATE executions SET outcome = 'requeued', finished = ? WHERE job_id = ? AND owner = ? AND outcome = 'running'",
                        System.currentTimeMillis(), id, owner.toString());
            }
            return null;
        });
    }

    @Override
    public synchronized Recovery recover(Owner self, long now, int poisonAfter) {
        return transaction(() -> recoverNow(self, now, poisonAfter));
    }

    private Recovery recoverNow(Owner self, long now, int poisonAfter) {
        String stale = "state = 'running' AND (owner IS NULL OR owner <> ? OR lease_until < ?)";
        String owner = self.toString();
        update("UPDATE executions SET outcome = 'lost', finished = ? WHERE outcome = 'running' AND job_id IN (SELECT id FROM jobs WHERE " + stale + ")",
                now, owner, now);
        int failed = update("UPDATE jobs SET state = 'failed', attempts = attempts + 1, finished = ?, owner = NULL, error = 'the server stopped while running "
                + "this job ' || (attempts + 1) || ' times in a row; it is not tried again (it may be what stops the server: check its input and model)' "
                + "WHERE " + stale + " AND attempts + 1 >= ?", now, owner, now, poisonAfter);
        int requeued = update("UPDATE jobs SET state = 'queued', attempts = attempts + 1, owner = NULL, lease_until = 0, progress_done = 0 "
                + "WHERE " + stale, owner, now);
        // a cancel that reached a job before the crash still holds: it does not run again
        update("UPDATE jobs SET state = 'cancelled', finished = ? WHERE state = 'queued' AND cancel_requested = 1", now);
        return new Recovery(requeued, failed);
    }

    @Override
    public Map<JobState, Long> counts() {
        Map<JobState, Long> m = new EnumMap<>(JobState.class);
        for (JobState s : JobState.values()) m.put(s, 0L);
        synchronized (readLock) {
            try (Statement s = reads.createStatement(); ResultSet r = s.executeQuery("SELECT state, COUNT(*) FROM jobs GROUP BY state")) {
                while (r.next()) m.put(JobState.valueOf(r.getString(1)), r.getLong(2));
                return m;
            } catch (SQLException e) {
                throw fail(e);
            }
        }
    }

    @Override
    public long oldestQueued() {
        synchronized (readLock) {
            try (Statement s = reads.createStatement(); ResultSet r = s.executeQuery("SELECT MIN(created) FROM jobs WHERE state = 'queued'")) {
                return r.next() ? r.getLong(1) : 0;
            } catch (SQLException e) {
                throw fail(e);
            }
        }
    }

    @Override
    public synchronized Optional<CacheEntry> cacheGet(String key, long now) {
        try (PreparedStatement p = db.prepareStatement("SELECT key, result_hash, bytes, last_used FROM result_cache WHERE key = ?")) {
            p.setString(1, key);
            try (ResultSet r = p.executeQuery()) {
                if (!r.next()) return Optional.empty();
                CacheEntry e = new CacheEntry(r.getString(1), r.getString(2), r.getLong(3), now);
                update("UPDATE result_cache SET last_used = ? WHERE key = ?", now, key);
                return Optional.of(e);
            }
        } catch (SQLException e) {
            throw fail(e);
        }
    }

    @Override
    public synchronized void cachePut(CacheEntry e) {
        update("INSERT OR REPLACE INTO result_cache (key, result_hash, bytes, last_used) VALUES (?,?,?,?)", e.key(), e.resultHash(), e.bytes(), e.lastUsed());
    }

    @Override
    public synchronized List<CacheEntry> cacheEvict(long maxBytes) {
        List<CacheEntry> all = new ArrayList<>(), out = new ArrayList<>();
        long total = 0;
        try (Statement s = db.createStatement(); ResultSet r = s.executeQuery("SELECT key, result_hash, bytes, last_used FROM result_cache ORDER BY last_used DESC")) {
            while (r.next()) all.add(new CacheEntry(r.getString(1), r.getString(2), r.getLong(3), r.getLong(4)));
        } catch (SQLException e) {
            throw fail(e);
        }
        for (CacheEntry e : all) {
            total += e.bytes();
            if (total > maxBytes) out.add(e);
        }
        return transaction(() -> {
            for (CacheEntry e : out) update("DELETE FROM result_cache WHERE key = ?", e.key());
            return out;
        });
    }

    @Override
    public synchronized void heartbeat(Node n) {
        update("INSERT OR REPLACE INTO nodes (name, owner, url, devices, models, running, free_slots, started, heartbeat) VALUES (?,?,?,?,?,?,?,?,?)",
                n.name(), n.owner(), n.url(), n.devices(), n.models(), n.running(), n.freeSlots(), n.started(), System.currentTimeMillis());
    }

    @Override
    public List<Node> nodes() {
        List<Node> out = new ArrayList<>();
        synchronized (readLock) {
            try (PreparedStatement p = reads.prepareStatement("SELECT name, owner, url, devices, models, running, free_slots, started, ? - heartbeat "
                    + "FROM nodes ORDER BY heartbeat DESC")) {
                p.setLong(1, System.currentTimeMillis());
                try (ResultSet r = p.executeQuery()) {
                    while (r.next()) out.add(node(r));
                }
                return out;
            } catch (SQLException e) {
                throw fail(e);
            }
        }
    }

    static Node node(ResultSet r) throws SQLException {
        return new Node(r.getString(1), r.getString(2), r.getString(3), r.getString(4), r.getString(5), r.getInt(6), r.getInt(7), r.getLong(8),
                Math.max(0, r.getLong(9)));
    }

    @Override
    public boolean paused() {
        synchronized (readLock) {
            try (Statement s = reads.createStatement(); ResultSet r = s.executeQuery("SELECT value FROM settings WHERE name = 'paused'")) {
                return r.next() && r.getString(1).equals("true");
            } catch (SQLException e) {
                throw fail(e);
            }
        }
    }

    @Override
    public synchronized void paused(boolean on) {
        acknowledged(() -> update("INSERT OR REPLACE INTO settings (name, value) VALUES ('paused', ?)", String.valueOf(on)));
    }

    @Override
    public synchronized void close() {
        synchronized (readLock) {
            try (Connection r = reads; Connection w = db) {
                // both closed (try-with-resources: the writer first)
            } catch (SQLException e) {
                throw fail(e);
            }
        }
    }

    /** Work whose commits are synced to the disk before it returns: what a client has been answered for (see the class doc). */
    private <T> T acknowledged(java.util.function.Supplier<T> work) {
        pragma("synchronous=FULL");
        try {
            return work.get();
        } finally {
            pragma("synchronous=NORMAL");
        }
    }

    private void pragma(String setting) {
        try (Statement s = db.createStatement()) {
            s.execute("PRAGMA " + setting);
            try (ResultSet r = s.executeQuery("PRAGMA synchronous")) {
                level = r.next() ? r.getInt(1) : -1;
            }
        } catch (SQLException e) {
            throw fail(e);
        }
    }

    /** SQLite's synchronous level on the connection now: 1 NORMAL, 2 FULL. */
    synchronized int synchronousLevel() {
        try (Statement s = db.createStatement(); ResultSet r = s.executeQuery("PRAGMA synchronous")) {
            return r.next() ? r.getInt(1) : -1;
        } catch (SQLException e) {
            throw fail(e);
        }
    }

    /** The synchronous level the last write of {@code work} ran under (tests: which calls sync the disk). */
    synchronized int synchronousLevel(Runnable work) {
        lastWriteLevel = -1;
        work.run();
        return lastWriteLevel;
    }

    /** Work of several statements committed as one transaction, or rolled back whole when it throws. */
    private <T> T transaction(java.util.function.Supplier<T> work) {
        try {
            db.setAutoCommit(false);
            try {
                T result = work.get();
                db.commit();
                return result;
            } catch (RuntimeException | Error e) {
                db.rollback();
                throw e;
            } finally {
                db.setAutoCommit(true);
            }
        } catch (SQLException e) {
            throw fail(e);
        }
    }

    private int update(String sql, Object... args) {
        try (PreparedStatement p = db.prepareStatement(sql)) {
            for (int i = 0; i < args.length; i++) p.setObject(i + 1, args[i]);
            lastWriteLevel = level;
            return p.executeUpdate();
        } catch (SQLException e) {
            throw fail(e);
        }
    }

    private static Optional<Job> one(Connection c, String sql, Object... args) {
        List<Job> l = many(c, sql, args);
        return l.isEmpty() ? Optional.empty() : Optional.of(l.getFirst());
    }

    private static List<Job> many(Connection c, String sql, Object... args) {
        try (PreparedStatement p = c.prepareStatement(sql)) {
            for (int i = 0; i < args.length; i++) p.setObject(i + 1, args[i]);
            List<Job> out = new ArrayList<>();
            try (ResultSet r = p.executeQuery()) {
                while (r.next()) out.add(job(r));
            }
            return out;
        } catch (SQLException e) {
            throw fail(e);
        }
    }

    /** A row of {@link #COLUMNS} as a job (both stores select the same columns). */
    static Job job(ResultSet r) throws SQLException {
        return new Job(r.getString(1), r.getLong(2), JobState.valueOf(r.getString(3)), r.getInt(4), r.getString(5), r.getString(6),
                r.getString(7), r.getInt(8), r.getInt(9), r.getLong(10), r.getLong(11), r.getInt(12), r.getInt(13), r.getInt(14),
                r.getString(15), r.getString(16), r.getInt(17) != 0, r.getString(18), r.getLong(19), r.getInt(20), r.getInt(21),
                r.getString(22), r.getInt(23) != 0, r.getString(24), r.getLong(25), r.getLong(26), r.getLong(27), r.getLong(28));
    }
}
