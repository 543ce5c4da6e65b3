package dev.headroom.models;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.commons.compress.compressors.gzip.GzipCompressorInputStream;

/**
 * Fetches an npm package with the machine's own npm client ({@code npm pack}, which talks only to
 * the configured registry) and unpacks it into headroom's cache, once. Pretrained weights and test
 * fixtures that ship in npm packages come this way, so nothing large lives in the repository.
 *
 * <p>The cache is {@code $HEADROOM_CACHE}, else {@code $XDG_CACHE_HOME/headroom}, else
 * {@code ~/.cache/headroom}. A package is unpacked into a temporary folder and renamed into place,
 * so an interrupted fetch leaves nothing that looks complete.
 */
public final class NpmPackage {
    private NpmPackage() {}

    /** Thrown when a package cannot be had; the message says what to do. */
    public static final class Unavailable extends RuntimeException {
        Unavailable(String msg) {
            super(msg);
        }
    }

    public static Path cacheRoot() {
        return dev.headroom.runtime.CacheDir.root();
    }

    /** The folder holding the unpacked package ({@code .../package/...} inside), fetched if needed. */
    public static synchronized Path unpacked(String name, String version) {
        Path dir = folder(name, version);
        if (Files.isDirectory(dir.resolve("package"))) return dir;
        try {
            Files.createDirectories(dir.getParent());
            Path work = Files.createTempDirectory(dir.getParent(), ".fetch-");
            try {
                Path tgz = pack(name + "@" + version, work);
                Path staging = work.resolve("unpacked");
                untar(tgz, staging);
                try {
                    Files.move(staging, dir, StandardCopyOption.ATOMIC_MOVE);
                } catch (IOException raced) {
                    if (!Files.isDirectory(dir.resolve("package"))) throw raced;
                }
            } finally {
                deleteTree(work);
            }
            return dir;
        } catch (IOException e) {
            throw new Unavailable("could not unpack npm package " + name + "@" + version + " into " + dir.getParent() + ": " + e.getMessage());
        }
    }

    /** The package's folder if it is already in the cache (fetching nothing), else empty. */
    public static java.util.Optional<Path> cached(String name, String version) {
        Path dir = folder(name, version);
        return Files.isDirectory(dir.resolve("package")) ? java.util.Optional.of(dir) : java.util.Optional.empty();
    }

    private static Path folder(String name, String version) {
        return cacheRoot().resolve("npm").resolve(name.replace('/', '+') + "@" + version);
    }

    private static Path pack(String spec, Path work) throws IOException {
        ProcessBuilder pb = new ProcessBuilder("npm", "pack", spec, "--silent", "--pack-destination", work.toString())
                .directory(work.toFile()).redirectErrorStream(true);
        Process p;
        try {
            p = pb.start();
        } catch (IOException e) {
            throw new Unavailable("npm was not found; it fetches " + spec + " from the npm registry. Install Node.js and npm "
                    + "(Debian/Ubuntu: apt-get install npm), or pass --model FILE with a model you have");
        }
        String out = new String(p.getInputStream().readAllBytes());
        try {
            if (!p.waitFor(10, TimeUnit.MINUTES)) {
                p.destroyForcibly();
                throw new Unavailable("npm pack " + spec + " took over 10 minutes; check the network and try again");
            }
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new Unavailable("interrupted while fetching " + spec);
        }
        try (Stream<Path> s = Files.list(work)) {
            Path tgz = s.filter(f -> f.toString().endsWith(".tgz")).findFirst().orElse(null);
            if (p.exitValue() != 0 || tgz == null) {
                String last = out.lines().filter(l -> !l.isBlank()).reduce((a, b) -> b).orElse("no output");
                throw new Unavailable("npm pack " + spec + " failed (exit " + p.exitValue() + "): " + last);
            }
            return tgz;
        }
    }

    private static void untar(Path tgz, Path dest) throws IOException {
        Files.createDirectories(dest);
        Path root = dest.toAbsolutePath().normalize();
        try (InputStream in = new BufferedInputStream(Files.newInputStream(tgz));
             TarArchiveInputStream tar = new TarArchiveInputStream(new GzipCompressorInputStream(in))) {
            for (TarArchiveEntry e; (e = tar.getNextEntry()) != null; ) {
                Path target = root.resolve(e.getName()).normalize();
                if (!target.startsWith(root)) throw new IOException("archive entry '" + e.getName() + "' leaves the package folder");
                if (e.isDirectory()) {
                    Files.createDirectories(target);
                } else if (e.isFile()) {
                    Files.createDirectories(target.getParent());
                    Files.copy(tar, target, StandardCopyOption.REPLACE_EXISTING);
                }
            }
        }
    }

    private static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p)) return;
        try (Stream<Path> s = Files.walk(p)) {
            for (Path q : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(q);
        }
    }
}
