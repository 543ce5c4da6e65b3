package dev.headroom.server;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import dev.headroom.core.sched.Scheduling;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;

/**
 * {@link JobStore} in PostgreSQL, shared by a fleet of servers: one queue, one history. PostgreSQL
 * does the hard part (transactions, row locks, durability); this class only says what to lock.
 *
 * <p><b>Claiming.</b> {@link #claimNext} locks the first {@link #WINDOW} queued rows in
 * priority-with-aging order with {@code FOR UPDATE SKIP LOCKED}, so servers claiming at the same
 * moment get disjoint candidates and never wait on each other; the caller's policy picks one it can
 * admit on its own devices, and it becomes {@code running} for that server in the same transaction,
 * with an execution record.
 *
 * <p><b>Leases.</b> Lease times are the database's clock ({@code clock_timestamp()}), never a
 * server's, so servers with skewed clocks agree on when a lease ran out. A running job's owner
 * renews its leases every heartbeat; {@link #recover} (every server calls it every heartbeat) hands
 * jobs whose lease ran out back to the queue with attempts + 1, or fails them by the poison rule.
 * Every write by an owner is conditional on {@code owner}, so after that the old owner can neither
 * finish the job nor write over its result: a result is written once.
 *
 * <p>Schema changes: {@link PostgresSchema}; where to connect: {@link PostgresTarget}.
 */
public final class PostgresJobStore implements JobStore {

    /** Candidates locked per claim: the scheduling policy's affinity look-ahead. */
    static final int WINDOW = Scheduling.Config.DEFAULT.lookAhead();
    private static final double AGING_PER_MINUTE = Scheduling.Config.DEFAULT.agingPerMinute();
    /** Milliseconds since the epoch by the database's clock. */
    private static final String DB_NOW = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

    /**
     * Priority with aging as a claim order: effective priority = priority + aging per minute waited
     * (Scheduling.effectivePriority) orders jobs as {@code priority * 60000 / aging - created} does,
     * a value that does not change while a job waits, so an index serves it (written for the default
     * aging of 1 a minute; another aging stays correct, only without the index). Ties: the earlier job.
     */
    static final String QUEUE_ORDER = "(priority * " + (60000.0 / AGING_PER_MINUTE) + " - created) DESC, seq";

    private static final String COLUMNS = SqliteJobStore.COLUMNS;

    private final HikariDataSource pool;

    /** Connects (the password may be null: the driver then looks in ~/.pgpass), and migrates the schema. */
    public PostgresJobStore(PostgresTarget target, String password) {
        HikariConfig c = new HikariConfig();
        c.setJdbcUrl(target.jdbcUrl());
        c.setUsername(target.user());
        if (password != null) c.setPassword(password);
        c.setPoolName("headroom-store");
        c.setMaximumPoolSize(8);
        c.setMinimumIdle(1);
        // fail fast while the database is away: the scheduler stops claiming and retries, running jobs keep their leases
        c.setConnectionTimeout(2000);
        c.setValidationTimeout(1000);
        c.addDataSourceProperty("ApplicationName", "headroom");
        c.addDataSourceProperty("connectTimeout", "5");
        c.addDataSourceProperty("socketTimeout", "30");
        c.addDataSourceProperty("tcpKeepAlive", "true");
        try {
            pool = new HikariDataSource(c);
        } catch (RuntimeException e) {
            throw new IllegalStateException("cannot connect to the job store " + target.display() + ": " + rootMessage(e)
                    + "; check that PostgreSQL runs there and that PGPASSWORD (or --store-password-file) is right", e);
        }
        try {
            migrate();
        } catch (SQLException e) {
            pool.close();
            throw new IllegalStateException("cannot migrate the job store " + target.display() + ": " + e.getMessage(), e);
        }
    }

    private static String rootMessage(Throwable e) {
        while (e.getCause() != null) e = e.getCause();
        return String.valueOf(e.getMessage()).lines().findFirst().orElse("");
    }

    public int schemaVersion() {
        try (Connection c = pool.getConnection(); Statement s = c.createStatement()) {
            return SchemaMigrations.version(s);
        } catch (SQLException e) {
            throw fail(e);
        }
    }

    private void migrate() throws SQLException {
        try (Connection c = pool.getConnection()) {
            // servers starting together: one migrates, the others wait for the lock and then find nothing to do
            PostgresSchema.migrate(c);
        }
    }

    private static IllegalStateException fail(SQLException e) {
        String msg = "job store: " + String.valueOf(e.getMessage()).lines().findFirst().orElse("");
        // no connection to be had (08: connection exceptions; 57P: the server shutting down or restarting)
        String state = e.getSQLState() == null ? "" : e.getSQLState();
        if (e instanceof java.sql.SQLTransientConnectionException || state.startsWith("08") || state.startsWith("57P")) return new Unavailable(msg, e);
        return new IllegalStateException(msg, e);
    }

    /** One transaction on one connection of the pool. */
    private interface Tx<T> {
        T run(Connection c) throws SQLException;
    }

    private <T> T tx(Tx<T> work) {
        try (Connection c = pool.getConnection()) {
            c.setAutoCommit(false);
            try {
                T t = work.run(c);
                c.commit();
                return t;
            } catch (SQLException | RuntimeException e) {
                c.rollback();
                throw e;
            }
        } catch (SQLException e) {
            throw fail(e);
        }
    }

    private static int update(Connection c, String sql, Object... args) throws SQLException {
        try (PreparedStatement p = c.prepareStatement(sql)) {
            bind(p, args);
            return p.executeUpdate();
        }
    }

    private int update(String sql, Object... args) {
        try (Connection c = pool.getConnection()) {
            return update(c, sql, args);
        } catch (SQLException e) {
            throw fail(e);
        }
    }

    private static void bind(PreparedStatement p, Object... args) throws SQLException {
        for (int i = 0; i < args.length; i++) p.setObject(i + 1, args[i]);
    }

    private static List<Job> jobs(Connection c, String sql, Object... args) throws SQLException {
        try (PreparedStatement p = c.prepareStatement(sql)) {
            bind(p, args);
            List<Job> out = new ArrayList<>();
            try (ResultSet r = p.executeQuery()) {
                while (r.next()) out.add(SqliteJobStore.job(r));
            }
            return out;
        }
    }

    private List<Job> jobs(String sql, Object... args) {
        try (Connection c = pool.getConnection()) {
            return jobs(c, sql, args);
        } catch (SQLException e) {
            throw fail(e);
        }
    }

    @Override
    public Job insert(Job j) {
        return tx(c -> {
            Object[] v = {j.id(), j.state().name(), j.priority(), j.model(), j.params(), j.inputHash(), j.width(), j.height(), j.peakBytes(),
                    j.weightBytes(), j.tile(), j.batch(), j.cacheKey(), j.cached() ? 1 : 0, j.resultHash(), j.resultBytes(), j.progressDone(), j.progressTotal(),
                    j.idempotencyKey(), j.created(), j.started(), j.finished()};
            // two servers given the same Idempotency-Key at once: one row wins, both answer with it
            update(c, "INSERT INTO jobs (id, state, priority, model, params, input_hash, width, height, peak_bytes, weight_bytes, tile, batch, "
                    + "cache_key, cached, result_hash, result_bytes, progress_done, progress_total, idempotency_key, created, started, finished) "
                    + "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (idempotency_key) DO NOTHING", v);
            String where = j.idempotencyKey() == null ? "id = ?" : "idempotency_key = ?";
            return jobs(c, "SELECT " + COLUMNS + " FROM jobs WHERE " + where, j.idempotencyKey() == null ? j.id() : j.idempotencyKey()).getFirst();
        });
    }

    @Override
    public Optional<Job> get(String id) {
        return jobs("SELECT " + COLUMNS + " FROM jobs WHERE id = ?", id).stream().findFirst();
    }

    @Override
    public List<Job> list(JobState state, long afterSeq, int limit) {
        String sql = "SELECT " + COLUMNS + " FROM jobs WHERE seq > ?" + (state == null ? "" : " AND state = ?") + " ORDER BY seq LIMIT ?";
        return state == null ? jobs(sql, afterSeq, limit) : jobs(sql, afterSeq, state.name(), limit);
    }

    @Override
    public List<Job> queued(int limit) {
        return jobs("SELECT " + COLUMNS + " FROM jobs WHERE state = 'queued' ORDER BY priority DESC, seq LIMIT ?", limit);
    }

    private static boolean claim(Connection c, String id, Owner owner, long leaseMillis, long now) throws SQLException {
        if (update(c, "UPDATE jobs SET state = 'running', owner = ?, lease_until = " + DB_NOW + " + ?, started = ? WHERE id = ? AND state = 'queued'",
                owner.toString(), leaseMillis, now, id) != 1) return false;
        update(c, "INSERT INTO executions (job_id, attempt, node, owner, started, outcome) SELECT id, attempts, ?, ?, ?, 'running' FROM jobs WHERE id = ?",
                owner.node(), owner.toString(), now, id);
        return true;
    }

    @Override
    public boolean claim(String id, Owner owner, long leaseMillis, long now) {
        return tx(c -> claim(c, id, owner, leaseMillis, now));
    }

    @Override
    public Optional<Job> claimNext(Owner owner, long leaseMillis, long now, Function<List<Job>, Optional<String>> pick) {
        return tx(c -> {
            List<Job> candidates = jobs(c, "SELECT " + COLUMNS + " FROM jobs WHERE state = 'queued' ORDER BY " + QUEUE_ORDER
                    + " LIMIT ? FOR UPDATE SKIP LOCKED", WINDOW);
            Optional<String> id = candidates.isEmpty() ? Optional.empty() : pick.apply(candidates);
            if (id.isEmpty() || !claim(c, id.get(), owner, leaseMillis, now)) return Optional.empty();
            return jobs(c, "SELECT " + COLUMNS + " FROM jobs WHERE id = ?", id.get()).stream().findFirst();
        });
    }

    @Override
    public Map<String, Boolean> renew(Owner owner, java.util.Collection<String> ids, long leaseMillis, long now) {
        if (ids.isEmpty()) return Map.of();
        try (Connection c = pool.getConnection();
             PreparedStatement p = c.prepareStatement("UPDATE jobs SET lease_until = " + DB_NOW + " + ? WHERE id = ANY (?) AND owner = ? "
                     + "AND state = 'running' RETURNING id, cancel_requested")) {
            bind(p, leaseMillis, c.createArrayOf("text", ids.toArray()), owner.toString());
            Map<String, Boolean> held = new HashMap<>();
            try (ResultSet r = p.executeQuery()) {
                while (r.next()) held.put(r.getString(1), r.getInt(2) != 0);
            }
            return held;
        } catch (SQLException e) {
            throw fail(e);
        }
    }

    @Override
    public void progress(String id, int done, int total) {
        update("UPDATE jobs SET progress_done = ?, progress_total = ? WHERE id = ? AND state = 'running'", done, total, id);
    }

    @Override
    public boolean finish(String id, Owner owner, JobState to, String error, String resultHash, long resultBytes, long now) {
        return tx(c -> {
            if (update(c, "UPDATE jobs SET state = ?, error = ?, result_hash = ?, result_bytes = ?, finished = ?, owner = NULL "
                    + "WHERE id = ? AND state = 'running' AND owner = ?", to.name(), error, resultHash, resultBytes, now, id, owner.toString()) != 1) {
                return false;
            }
            update(c, "UPDATE executions SET outcome = ?, finished = ? WHERE job_id = ? AND owner = ? AND outcome = 'running'",
                    to.name(), now, id, owner.toString());
            return true;
        });
    }

    @Override
    public Optional<JobState> cancel(String id, long now) {
        if (update("UPDATE jobs SET state = 'cancelled', finished = ? WHERE id = ? AND state = 'queued'", now, id) == 1) {
            return Optional.of(JobState.cancelled);
        }
        // running (perhaps claimed just now): its owner sees the flag at its next heartbeat and stops at the next tile
        update("UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND state = 'running'", id);
        return get(id).map(Job::state);
    }

    @Override
    public boolean priority(String id, int priority) {
        return update("UPDATE jobs SET priority = ? WHERE id = ? AND state = 'queued'", priority, id) == 1;
    }

    @Override
    public void requeue(String id, Owner owner) {
        tx(c -> {
            if (update(c, "UPDATE jobs SET state = 'queued', owner = NULL, lease_until = 0, progress_done = 0 WHERE id = ? AND state = 'running' "
                    + "AND owner = ?", id, owner.toString()) == 1) {
                update(c, "UPDATE executions SET outcome = 'requeued', finished = ? WHERE job_id = ? AND owner = ? AND outcome = 'running'",
                        System.currentTimeMillis(), id, owner.toString());
            }
            return null;
        });
    }

    /** Hands back running jobs whose lease ran out by the database's clock (whoever owned them); {@code self} plays no part in a fleet. */
    @Override
    public Recovery recover(Owner self, long now, int poisonAfter) {
        return tx(c -> {
            record Stale(String id, int attempts, boolean cancel) {}
            List<Stale> stale = new ArrayList<>();
            // locked until commit: the old owner's renew or finish waits, then finds the job no longer its own
            try (PreparedStatement p = c.prepareStatement("SELECT id, attempts, cancel_requested FROM jobs WHERE state = 'running' AND lease_until < "
                    + DB_NOW + " FOR UPDATE SKIP LOCKED");
                 ResultSet r = p.executeQuery()) {
                while (r.next()) stale.add(new Stale(r.getString(1), r.getInt(2), r.getInt(3) != 0));
            }
            int requeued = 0, failed = 0;
            for (Stale s : stale) {
                int attempts = s.attempts() + 1;
                if (attempts >= poisonAfter) {
                    update(c, "UPDATE jobs SET state = 'failed', attempts = ?, finished = ?, owner = NULL, error = ? WHERE id = ?", attempts, now,
                            "the server running this job stopped " + attempts + " times in a row; it is not tried again (it may be what stops "
                                    + "the server: check its input and model)", s.id());
                    failed++;
                } else if (s.cancel()) {
                    // a cancel that reached it before its server died still holds: it does not run again
                    update(c, "UPDATE jobs SET state = 'cancelled', attempts = ?, finished = ?, owner = NULL WHERE id = ?", attempts, now, s.id());
                } else {
                    update(c, "UPDATE jobs SET state = 'queued', attempts = ?, owner = NULL, lease_until = 0, progress_done = 0 WHERE id = ?",
                            attempts, s.id());
                    requeued++;
                }
                update(c, "UPDATE executions SET outcome = 'lost', finished = ? WHERE job_id = ? AND outcome = 'running'", now, s.id());
            }
            return new Recovery(requeued, failed);
        });
    }

    @Override
    public Map<JobState, Long> counts() {
        Map<JobState, Long> m = new EnumMap<>(JobState.class);
        for (JobState s : JobState.values()) m.put(s, 0L);
        try (Connection c = pool.getConnection(); Statement s = c.createStatement();
             ResultSet r = s.executeQuery("SELECT state, COUNT(*) FROM jobs GROUP BY state")) {
            while (r.next()) m.put(JobState.valueOf(r.getString(1)), r.getLong(2));
            return m;
        } catch (SQLException e) {
            throw fail(e);
        }
    }

    @Override
    public long oldestQueued() {
        try (Connection c = pool.getConnection(); Statement s = c.createStatement();
             ResultSet r = s.executeQuery("SELECT COALESCE(MIN(created), 0) FROM jobs WHERE state = 'queued'")) {
            return r.next() ? r.getLong(1) : 0;
        } catch (SQLException e) {
            throw fail(e);
        }
    }

    @Override
    public Optional<CacheEntry> cacheGet(String key, long now) {
        try (Connection c = pool.getConnection();
             PreparedStatement p = c.prepareStatement("UPDATE result_cache SET last_used = ? WHERE key = ? RETURNING key, result_hash, bytes")) {
            bind(p, now, key);
            try (ResultSet r = p.executeQuery()) {
                return r.next() ? Optional.of(new CacheEntry(r.getString(1), r.getString(2), r.getLong(3), now)) : Optional.empty();
            }
        } catch (SQLException e) {
            throw fail(e);
        }
    }

    @Override
    public void cachePut(CacheEntry e) {
        update("INSERT INTO result_cache (key, result_hash, bytes, last_used) VALUES (?,?,?,?) ON CONFLICT (key) DO UPDATE SET "
                + "result_hash = EXCLUDED.result_hash, bytes = EXCLUDED.bytes, last_used = EXCLUDED.last_used", e.key(), e.resultHash(), e.bytes(), e.lastUsed());
    }

    @Override
    public List<CacheEntry> cacheEvict(long maxBytes) {
        return tx(c -> {
            List<CacheEntry> out = new ArrayList<>();
            // the entries past maxBytes, newest first; DELETE ... RETURNING so two servers never both claim one
            try (PreparedStatement p = c.prepareStatement("DELETE FROM result_cache WHERE key IN (SELECT key FROM (SELECT key, SUM(bytes) OVER "
                    + "(ORDER BY last_used DESC, key) AS total FROM result_cache) t WHERE total > ?) RETURNING key, result_hash, bytes, last_used")) {
                bind(p, maxBytes);
                try (ResultSet r = p.executeQuery()) {
                    while (r.next()) out.add(new CacheEntry(r.getString(1), r.getString(2), r.getLong(3), r.getLong(4)));
                }
            }
            return out;
        });
    }

    @Override
    public void heartbeat(Node n) {
        update("INSERT INTO nodes (name, owner, url, devices, models, running, free_slots, started, heartbeat) VALUES (?,?,?,?,?,?,?,?," + DB_NOW + ") "
                + "ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, url = EXCLUDED.url, devices = EXCLUDED.devices, models = EXCLUDED.models, "
                + "running = EXCLUDED.running, free_slots = EXCLUDED.free_slots, started = EXCLUDED.started, heartbeat = EXCLUDED.heartbeat",
                n.name(), n.owner(), n.url(), n.devices(), n.models(), n.running(), n.freeSlots(), n.started());
    }

    @Override
    public List<Node> nodes() {
        try (Connection c = pool.getConnection(); Statement s = c.createStatement();
             ResultSet r = s.executeQuery("SELECT name, owner, url, devices, models, running, free_slots, started, " + DB_NOW + " - heartbeat "
                     + "FROM nodes ORDER BY heartbeat DESC")) {
            List<Node> out = new ArrayList<>();
            while (r.next()) out.add(SqliteJobStore.node(r));
            return out;
        } catch (SQLException e) {
            throw fail(e);
        }
    }

    @Override
    public boolean paused() {
        try (Connection c = pool.getConnection(); Statement s = c.createStatement();
             ResultSet r = s.executeQuery("SELECT value FROM settings WHERE name = 'paused'")) {
            return r.next() && r.getString(1).equals("true");
        } catch (SQLException e) {
            throw fail(e);
        }
    }

    @Override
    public void paused(boolean on) {
        update("INSERT INTO settings (name, value) VALUES ('paused', ?) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value", String.valueOf(on));
    }

    @Override
    public boolean shared() {
        return true;
    }

    @Override
    public void close() {
        pool.close();
    }
}
