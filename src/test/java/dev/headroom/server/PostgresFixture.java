package dev.headroom.server;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;

/**
 * A real PostgreSQL for tests: initdb into a fresh folder, pg_ctl start on a free loopback port
 * (password authentication, so the servers take theirs from PGPASSWORD), stop and start again for
 * outage tests, and stop and remove everything at close. It uses the PostgreSQL binaries of the
 * machine ({@code /usr/lib/postgresql/N/bin}, or {@code HEADROOM_PG_BIN}); {@code .ci/run} installs
 * Debian's postgresql package where they are missing. Without them the tests that need a database
 * are skipped, saying so. As root (PostgreSQL refuses to run as root) it runs as the
 * {@code postgres} user, else {@code nobody}.
 */
final class PostgresFixture implements AutoCloseable {
    static final String USER = "headroom", DB = "headroom";

    private final Path bin, dir, data;
    private final List<String> asUser;
    private final int port;
    final String password;

    /** The PostgreSQL binaries, newest version first, or empty. */
    static Optional<Path> binaries() {
        String env = System.getenv("HEADROOM_PG_BIN");
        if (env != null && !env.isBlank()) return Optional.of(Path.of(env)).filter(b -> Files.isExecutable(b.resolve("pg_ctl")));
        Path root = Path.of("/usr/lib/postgresql");
        if (!Files.isDirectory(root)) return Optional.empty();
        try (Stream<Path> s = Files.list(root)) {
            return s.map(v -> v.resolve("bin")).filter(b -> Files.isExecutable(b.resolve("initdb")) && Files.isExecutable(b.resolve("pg_ctl")))
                    .max(Comparator.comparing(b -> versionOf(b.getParent().getFileName().toString())));
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    private static int versionOf(String s) {
        try {
            return Integer.parseInt(s);
        } catch (NumberFormatException e) {
            return 0;
        }
    }

    /** Starts one, or skips the calling test (visibly) where no PostgreSQL is installed. */
    static PostgresFixture startOrSkip() throws Exception {
        Optional<Path> bin = binaries();
        if (bin.isEmpty()) System.out.println("SKIPPED: no PostgreSQL binaries (/usr/lib/postgresql/N/bin or HEADROOM_PG_BIN); .ci/run installs Debian's postgresql");
        Assumptions.assumeTrue(bin.isPresent(), "no PostgreSQL binaries (/usr/lib/postgresql/N/bin or HEADROOM_PG_BIN); .ci/run installs Debian's postgresql");
        return new PostgresFixture(bin.get());
    }

    private PostgresFixture(Path bin) throws Exception {
        this.bin = bin;
        this.dir = Files.createTempDirectory(Path.of("/tmp"), "headroom-pg-");
        this.data = dir.resolve("data");
        this.port = freePort();
        byte[] b = new byte[16];
        new SecureRandom().nextBytes(b);
        this.password = HexFormat.of().formatHex(b);
        Path pw = dir.resolve("pw");
        Files.writeString(pw, password + "\n");
        asUser = new ArrayList<>();
        if ("root".equals(System.getProperty("user.name"))) {
            String user = run(List.of("id", "-u", "postgres"), false) == 0 ? "postgres" : "nobody";
            check(List.of("chown", "-R", user, dir.toString()));
            asUser.addAll(List.of("runuser", "-u", user, "--"));
        }
        check(cmd(bin.resolve("initdb").toString(), "-D", data.toString(), "-U", USER, "--auth=scram-sha-256", "--pwfile=" + pw, "-E", "UTF8",
                "--no-sync", "--no-instructions"));
        start();
        try (Connection c = DriverManager.getConnection("jdbc:postgresql://127.0.0.1:" + port + "/postgres", USER, password)) {
            c.createStatement().execute("CREATE DATABASE " + DB);
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    private List<String> cmd(String... args) {
        List<String> c = new ArrayList<>(asUser);
        c.addAll(List.of(args));
        return c;
    }

    private int run(List<String> command, boolean log) throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
        pb.redirectOutput(log ? ProcessBuilder.Redirect.appendTo(dir.resolve("fixture.log").toFile()) : ProcessBuilder.Redirect.DISCARD);
        Process p = pb.start();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IllegalStateException(String.join(" ", command) + ": still running after 120 s");
        }
        return p.exitValue();
    }

    private void check(List<String> command) throws IOException, InterruptedException {
        int rc = run(command, true);
        if (rc != 0) throw new IllegalStateException(String.join(" ", command) + " exited " + rc + ":\n" + Files.readString(dir.resolve("fixture.log")));
    }

    /** postgresql://USER@127.0.0.1:PORT/DB, as --store takes it (the password goes in PGPASSWORD). */
    String url() {
        return "postgresql://" + USER + "@127.0.0.1:" + port + "/" + DB;
    }

    /** A plain JDBC connection for a test's own counts. */
    Connection connect() throws SQLException {
        return DriverManager.getConnection("jdbc:postgresql://127.0.0.1:" + port + "/" + DB, USER, password);
    }

    /** pg_ctl start, waiting until it accepts connections (fsync off: tests kill servers, never the database's machine). */
    void start() throws IOException, InterruptedException {
        check(cmd(bin.resolve("pg_ctl").toString(), "-D", data.toString(), "-l", data.resolveSibling("postgres.log").toString(), "-w", "-t", "60",
                "-o", "-c listen_addresses=127.0.0.1 -p " + port + " -c unix_socket_directories=" + dir + " -c fsync=off -c max_connections=200",
                "start"));
    }

    /** pg_ctl stop -m fast: every connection is cut, as when the database's machine goes away. */
    void stop() throws IOException, InterruptedException {
        check(cmd(bin.resolve("pg_ctl").toString(), "-D", data.toString(), "-m", "fast", "-w", "-t", "60", "stop"));
    }

    @Override
    public void close() throws Exception {
        try {
            run(cmd(bin.resolve("pg_ctl").toString(), "-D", data.toString(), "-m", "immediate", "-w", "stop"), true);
        } finally {
            try (Stream<Path> s = Files.walk(dir)) {
                for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
            }
        }
    }
}
