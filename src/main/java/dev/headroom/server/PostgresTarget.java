package dev.headroom.server;

import java.net.URI;
import java.net.URISyntaxException;

/** Where the fleet's job store is: a JDBC URL and a user, from {@code postgresql://USER@HOST:PORT/DB}; {@code display} is the URL without secrets. */
public record PostgresTarget(String jdbcUrl, String user, String display) {
    /**
     * Parses {@code postgresql://USER@HOST[:PORT]/DB}. A password in the URL is refused: it would
     * show in the process list; it comes from PGPASSWORD, a password file, or ~/.pgpass.
     */
    public static PostgresTarget parse(String url) {
        URI u;
        try {
            u = new URI(url);
        } catch (URISyntaxException e) {
            throw new IllegalArgumentException("--store " + url + " is not a URL; write postgresql://USER@HOST:PORT/DB");
        }
        if (!"postgresql".equals(u.getScheme()) && !"postgres".equals(u.getScheme())) {
            throw new IllegalArgumentException("--store " + url + ": use postgresql://USER@HOST:PORT/DB (or leave --store out for SQLite in --data)");
        }
        String info = u.getRawUserInfo();
        if (info != null && info.contains(":")) {
            throw new IllegalArgumentException("--store: put no password in the URL (it would show in the process list); set PGPASSWORD or use --store-password-file");
        }
        String db = u.getPath() == null ? "" : u.getPath().replaceFirst("^/", "");
        if (u.getHost() == null || info == null || info.isBlank() || db.isBlank()) {
            throw new IllegalArgumentException("--store " + url + ": write postgresql://USER@HOST:PORT/DB with a user, a host and a database");
        }
        int port = u.getPort() < 0 ? 5432 : u.getPort();
        String host = u.getHost();
        String query = u.getRawQuery() == null ? "" : "?" + u.getRawQuery();
        return new PostgresTarget("jdbc:postgresql://" + host + ":" + port + "/" + db + query, info, "postgresql://" + info + "@" + host + ":" + port + "/" + db);
    }
}
