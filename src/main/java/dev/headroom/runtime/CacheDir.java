package dev.headroom.runtime;

import java.nio.file.Path;

/** headroom's cache folder: {@code $HEADROOM_CACHE}, else {@code $XDG_CACHE_HOME/headroom}, else {@code ~/.cache/headroom}. */
public final class CacheDir {
    private CacheDir() {}

    public static Path root() {
        String env = System.getenv("HEADROOM_CACHE");
        if (env != null && !env.isBlank()) return Path.of(env);
        String xdg = System.getenv("XDG_CACHE_HOME");
        if (xdg != null && !xdg.isBlank()) return Path.of(xdg, "headroom");
        return Path.of(System.getProperty("user.home"), ".cache", "headroom");
    }
}
