package dev.headroom.server;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.HexFormat;

/**
 * The server's folder: headroom.db (the job store), token (mode 0600), uploads/ (inputs by job
 * id), results/ (outputs by job id, in the job's format), cache/ (the result cache's files, hard links to results) and
 * models/ (model files the server knows by their file name). Every file is written to a temporary
 * name in its folder and renamed into place, so a crash leaves the old file or the new one, never
 * half of one; names are made here, never taken from a request.
 */
public final class DataDir {
    private final Path root, files;

    public DataDir(Path root) throws IOException {
        this(root, null);
    }

    /**
     * @param shared where uploads/, results/ and cache/ go when a fleet of servers shares them (a
     *               folder they all mount); null: in root
     */
    public DataDir(Path root, Path shared) throws IOException {
        this.root = root.toAbsolutePath().normalize();
        this.files = shared == null ? this.root : shared.toAbsolutePath().normalize();
        Files.createDirectories(this.root.resolve("models"));
        for (String d : new String[] {"uploads", "results", "cache"}) Files.createDirectories(files.resolve(d));
        // temporaries of a write that a crash interrupted; in a shared folder other servers are writing theirs now, so only old ones
        long before = shared == null ? Long.MAX_VALUE : System.currentTimeMillis() - 3_600_000;
        for (String d : new String[] {"uploads", "results", "cache"}) {
            try (var s = Files.list(files.resolve(d))) {
                for (Path p : (Iterable<Path>) s::iterator) {
                    if (p.getFileName().toString().startsWith(".") && modified(p) < before) deleteTree(p);
                }
            }
        }
    }

    private static void deleteTree(Path p) throws IOException {
        if (Files.isDirectory(p, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            try (var s = Files.list(p)) {
                for (Path c : (Iterable<Path>) s::iterator) deleteTree(c);
            }
        }
        Files.deleteIfExists(p);
    }

    private static long modified(Path p) {
        try {
            return Files.getLastModifiedTime(p).toMillis();
        } catch (IOException e) {
            return Long.MAX_VALUE;   // gone meanwhile
        }
    }

    /** The platform's data folder: $XDG_DATA_HOME/headroom, else ~/.local/share/headroom. */
    public static Path platformDefault() {
        String xdg = System.getenv("XDG_DATA_HOME");
        return (xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".local", "share")).resolve("headroom");
    }

    public Path root() {
        return root;
    }

    public Path db() {
        return root.resolve("headroom.db");
    }

    public Path tokenFile() {
        return root.resolve("token");
    }

    public Path upload(String jobId) {
        return files.resolve("uploads").resolve(jobId);
    }

    /** A job's result, in the format its params name (the job keeps which). */
    public Path result(String jobId) {
        return files.resolve("results").resolve(jobId);
    }

    /** Where one run of a job writes its result before it is moved into place (a temporary: hidden). */
    public Path staging(String jobId, String run) {
        return files.resolve("results").resolve("." + jobId + "." + run);
    }

    public Path cached(String key) {
        return files.resolve("cache").resolve(key);
    }

    public Path models() {
        return root.resolve("models");
    }

    /** The bearer token, made on first start: 32 random bytes as hex, in a file only the owner can read. */
    public String token() throws IOException {
        Path f = tokenFile();
        if (Files.isRegularFile(f)) {
            String t = Files.readString(f).strip();
            if (t.length() >= 32) return t;
        }
        byte[] b = new byte[32];
        new SecureRandom().nextBytes(b);
        String t = HexFormat.of().formatHex(b);
        Path tmp = root.resolve(".token.tmp");
        Files.deleteIfExists(tmp);
        try {
            Files.createFile(tmp, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        } catch (UnsupportedOperationException e) {
            Files.createFile(tmp);
        }
        Files.writeString(tmp, t + "\n");
        move(tmp, f);
        return t;
    }

    /** Copies in to target through a temporary file, stopping past maxBytes; returns the SHA-256 of what was written. */
    public static String writeAtomically(InputStream in, Path target, long maxBytes) throws IOException {
        Path tmp = Files.createTempFile(target.getParent(), "." + target.getFileName(), ".tmp");
        try {
            MessageDigest md = sha256();
            long n = 0;
            try (var out = Files.newOutputStream(tmp)) {
                byte[] buf = new byte[1 << 16];
                for (int k; (k = in.read(buf)) > 0; ) {
                    n += k;
                    if (n > maxBytes) throw new TooLarge(n, maxBytes);
                    md.update(buf, 0, k);
                    out.write(buf, 0, k);
                }
                out.flush();
            }
            move(tmp, target);
            return HexFormat.of().formatHex(md.digest());
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** An upload past the limit. */
    public static final class TooLarge extends IOException {
        public final long limit;

        TooLarge(long seen, long limit) {
            super("more than " + limit + " bytes (" + seen + " read so far)");
            this.limit = limit;
        }
    }

    public static void move(Path from, Path to) throws IOException {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(from, to, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    public static String sha256(Path f) throws IOException {
        MessageDigest md = sha256();
        try (InputStream in = Files.newInputStream(f)) {
            byte[] buf = new byte[1 << 16];
            for (int k; (k = in.read(buf)) > 0; ) md.update(buf, 0, k);
        }
        return HexFormat.of().formatHex(md.digest());
    }

    static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
