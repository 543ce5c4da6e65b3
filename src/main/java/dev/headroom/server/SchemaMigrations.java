package dev.headroom.server;

import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.List;

/**
 * The numbered schema migrations of both job stores ({@link SqliteJobStore}, {@link PostgresJobStore}),
 * each store giving its own list in its own dialect: migration n (from 1) brings the schema from
 * version n-1 to n, and {@code schema_version} records every version applied. A store at a version
 * newer than the list is refused rather than guessed at.
 */
final class SchemaMigrations {
    private SchemaMigrations() {}

    /** The version the store is at (0 for a new one); makes {@code schema_version} if it is missing. */
    static int version(Statement s) throws SQLException {
        s.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
        try (ResultSet r = s.executeQuery("SELECT COALESCE(MAX(version), 0) FROM schema_version")) {
            return r.next() ? r.getInt(1) : 0;
        }
    }

    /**
     * Brings the store on {@code c} to the last of {@code migrations}, in one transaction: all of
     * them or none. {@code lock} (or null) is run first, to make stores starting together wait for
     * the first one's migration; {@code newer} says what to do with a store newer than the list.
     * The connection's auto-commit is as it was afterwards.
     *
     * @return the version the store was at before
     */
    static int migrate(Connection c, List<String[]> migrations, String lock, String newer) throws SQLException {
        boolean auto = c.getAutoCommit();
        c.setAutoCommit(false);
        int at;
        try (Statement s = c.createStatement()) {
            if (lock != null) s.execute(lock);
            at = version(s);
            if (at > migrations.size()) {
                throw new IllegalStateException("the job store is at schema version " + at + ", newer than this headroom knows (" + migrations.size() + "); " + newer);
            }
            for (int v = at + 1; v <= migrations.size(); v++) {
                for (String sql : migrations.get(v - 1)) s.execute(sql);
                s.execute("INSERT INTO schema_version VALUES (" + v + ")");
            }
            c.commit();
        } catch (SQLException | RuntimeException e) {
            // the migration's failure is the one to act on: a connection that is gone (and so rolled back) fails these too
            try {
                c.rollback();
            } catch (SQLException | RuntimeException r) {
                e.addSuppressed(r);
            }
            try {
                c.setAutoCommit(auto);
            } catch (SQLException | RuntimeException r) {
                e.addSuppressed(r);
            }
            throw e;
        }
        c.setAutoCommit(auto);
        return at;
    }
}
