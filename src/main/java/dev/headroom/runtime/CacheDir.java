package dev.headroom.runtime;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * headroom's cache folder: the {@code headroom.cache} system property, else {@code $HEADROOM_CACHE},
 * else {@code $XDG_CACHE_HOME/headroom}, else {@code ~/.cache/headroom}. It holds compiled kernels,
 * remembered convolution choices and downloaded packages; deleting it only costs the work again.
 */
public final class CacheDir {
    private CacheDir() {}

    public static Path root() {
        String prop = System.getProperty("headroom.cache");
        if (prop != null && !prop.isBlank()) return Path.of(prop);
        String env = System.getenv("HEADROOM_CACHE");
        if (env != null && !env.isBlank()) return Path.of(env);
        String xdg = System.getenv("XDG_CACHE_HOME");
        if (xdg != null && !xdg.isBlank()) return Path.of(xdg, "headroom");
        return Path.of(System.getProperty("user.home"), ".cache", "headroom");
    }

    /** Hex SHA-256 of a key's UTF-8 bytes: cache file names. */
    public static String sha256(String key) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(key.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
