package dev.headroom.server;

import java.sql.Connection;
import java.sql.SQLException;
import java.util.List;

/**
 * The job store's schema in PostgreSQL: the same numbered migrations as {@link SqliteJobStore}'s, in
 * PostgreSQL's dialect, applied by {@link SchemaMigrations} under an advisory lock so that servers
 * starting together migrate once.
 */
final class PostgresSchema {
    private PostgresSchema() {}

    private static final long MIGRATION_LOCK = 0x6865616472L;   // "headr"

    /** Migration n (from 1) brings the schema from version n-1 to n; the same versions as SQLite's. Append, never edit. */
    static final List<String[]> MIGRATIONS = List.<String[]>of(new String[] {
            """
            CREATE TABLE jobs (
              seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
              id TEXT NOT NULL UNIQUE,
              state TEXT NOT NULL,
              priority INTEGER NOT NULL,
              model TEXT NOT NULL,
              params TEXT NOT NULL,
              input_hash TEXT NOT NULL,
              width INTEGER NOT NULL,
              height INTEGER NOT NULL,
              peak_bytes BIGINT NOT NULL,
              tile INTEGER NOT NULL,
              batch INTEGER NOT NULL,
              attempts INTEGER NOT NULL DEFAULT 0,
              error TEXT,
              cache_key TEXT,
              cached INTEGER NOT NULL DEFAULT 0,
              result_hash TEXT,
              result_bytes BIGINT NOT NULL DEFAULT 0,
              progress_done INTEGER NOT NULL DEFAULT 0,
              progress_total INTEGER NOT NULL DEFAULT 0,
              idempotency_key TEXT UNIQUE,
              cancel_requested INTEGER NOT NULL DEFAULT 0,
              owner TEXT,
              lease_until BIGINT NOT NULL DEFAULT 0,
              created BIGINT NOT NULL,
              started BIGINT NOT NULL DEFAULT 0,
              finished BIGINT NOT NULL DEFAULT 0)""",
            "CREATE INDEX jobs_queued ON jobs (priority DESC, seq) WHERE state = 'queued'",
            "CREATE INDEX jobs_running ON jobs (owner) WHERE state = 'running'",
            "CREATE INDEX jobs_state ON jobs (state)",
            "CREATE TABLE result_cache (key TEXT PRIMARY KEY, result_hash TEXT NOT NULL, bytes BIGINT NOT NULL, last_used BIGINT NOT NULL)",
            "CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)"},
            new String[] {"ALTER TABLE jobs ADD COLUMN weight_bytes BIGINT NOT NULL DEFAULT 0"}, new String[] {
            "CREATE TABLE nodes (name TEXT PRIMARY KEY, owner TEXT NOT NULL, url TEXT, devices TEXT NOT NULL, models TEXT NOT NULL, "
                    + "running INTEGER NOT NULL, free_slots INTEGER NOT NULL, started BIGINT NOT NULL, heartbeat BIGINT NOT NULL)",
            "CREATE TABLE executions (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, job_id TEXT NOT NULL, attempt INTEGER NOT NULL, "
                    + "node TEXT NOT NULL, owner TEXT NOT NULL, started BIGINT NOT NULL, finished BIGINT NOT NULL DEFAULT 0, outcome TEXT NOT NULL)",
            "CREATE INDEX executions_job ON executions (job_id)"}, new String[] {
            // 4: the claim order as an index (see QUEUE_ORDER), so a claim reads its window instead of sorting the whole queue
            "CREATE INDEX jobs_claim_order ON jobs ((priority * 60000.0 - created) DESC, seq) WHERE state = 'queued'"});

    /** Brings the schema up to date; servers starting together: one migrates, the others wait for the lock and then find nothing to do. */
    static void migrate(Connection c) throws SQLException {
        SchemaMigrations.migrate(c, MIGRATIONS, "SELECT pg_advisory_xact_lock(" + MIGRATION_LOCK + ")", "run the same headroom on every server of the fleet");
    }
}
