package dev.headroom.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The migrations both job stores share, on SQLite: in order, all or none, resumed from the version reached, a newer store refused. */
class SchemaMigrationsTest {

    private static Connection open(Path file) throws SQLException {
        return DriverManager.getConnection("jdbc:sqlite:" + file.toAbsolutePath());
    }

    private static int version(Connection c) throws SQLException {
        try (Statement s = c.createStatement()) {
            return SchemaMigrations.version(s);
        }
    }

    private static final List<String[]> TWO = List.of(
            new String[] {"CREATE TABLE a (x INTEGER)", "INSERT INTO a VALUES (1)"},
            new String[] {"ALTER TABLE a ADD COLUMN y INTEGER"});

    @Test
    void migrationsRunInOrderOnceAndResumeFromTheVersionReached(@TempDir Path dir) throws Exception {
        try (Connection c = open(dir.resolve("s.db"))) {
            assertEquals(0, version(c), "a new store");
            assertEquals(0, SchemaMigrations.migrate(c, TWO.subList(0, 1), null, "?"));
            assertEquals(1, version(c));
            assertEquals(1, SchemaMigrations.migrate(c, TWO, null, "?"), "only the second runs now");
            assertEquals(2, SchemaMigrations.migrate(c, TWO, null, "?"), "nothing left to run");
            assertTrue(c.getAutoCommit(), "auto-commit as it was");
            try (Statement s = c.createStatement(); var r = s.executeQuery("SELECT COUNT(*), SUM(x), COUNT(y) FROM a")) {
                r.next();
                assertEquals(1, r.getInt(1), "migration 1 ran once");
            }
        }
    }

    @Test
    void aMigrationThatFailsLeavesTheStoreWhereItWas(@TempDir Path dir) throws Exception {
        List<String[]> broken = List.of(TWO.get(0), new String[] {"ALTER TABLE a ADD COLUMN y INTEGER", "ALTER TABLE nowhere ADD COLUMN z INTEGER"});
        try (Connection c = open(dir.resolve("s.db"))) {
            assertThrows(SQLException.class, () -> SchemaMigrations.migrate(c, broken, null, "?"));
            assertEquals(0, version(c), "all or none");
            assertTrue(c.getAutoCommit());
            assertEquals(0, SchemaMigrations.migrate(c, TWO, null, "?"), "the good list runs from the start: migration 1's table was rolled back");
            assertEquals(2, version(c));
        }
    }

    @Test
    void whenTheRollbackFailsTooTheMigrationsFailureIsThrownCarryingIt(@TempDir Path dir) throws Exception {
        List<String[]> broken = List.<String[]>of(new String[] {"ALTER TABLE nowhere ADD COLUMN z INTEGER"});
        try (Connection real = open(dir.resolve("s.db"))) {
            // a connection that drops as the rollback is sent, as a PostgreSQL server going away would: every later call fails
            boolean[] lost = {false};
            Connection c = (Connection) java.lang.reflect.Proxy.newProxyInstance(Connection.class.getClassLoader(), new Class<?>[] {Connection.class},
                    (proxy, m, args) -> {
                        if (m.getName().equals("rollback")) lost[0] = true;
                        if (lost[0]) throw new SQLException("connection lost (injected)");
                        try {
                            return m.invoke(real, args);
                        } catch (java.lang.reflect.InvocationTargetException e) {
                            throw e.getCause();
                        }
                    });
            SQLException e = assertThrows(SQLException.class, () -> SchemaMigrations.migrate(c, broken, null, "?"));
            assertTrue(e.getMessage().contains("nowhere"), "the migration's own failure: " + e.getMessage());
            assertEquals(2, e.getSuppressed().length, "the rollback's and the auto-commit's failures ride on it");
            assertEquals("connection lost (injected)", e.getSuppressed()[0].getMessage());
        }
    }

    @Test
    void aStoreFromANewerHeadroomIsRefusedWithBothVersionsAndWhatToDo(@TempDir Path dir) throws Exception {
        Path db = dir.resolve("headroom.db");
        try (Connection c = open(db)) {
            SchemaMigrations.migrate(c, SqliteJobStore.MIGRATIONS, null, "?");
            try (Statement s = c.createStatement()) {
                s.execute("INSERT INTO schema_version VALUES (" + (SqliteJobStore.MIGRATIONS.size() + 1) + ")");
            }
        }
        int n = SqliteJobStore.MIGRATIONS.size();
        var e = assertThrows(IllegalStateException.class, () -> new SqliteJobStore(db).close());
        assertEquals("the job store is at schema version " + (n + 1) + ", newer than this headroom knows (" + n + "); use a newer headroom or another --data folder",
                e.getMessage());
    }
}
