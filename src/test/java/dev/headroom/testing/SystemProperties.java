package dev.headroom.testing;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * System properties set for a test and put back as they were when it closes (headroom reads some
 * switches, e.g. headroom.conv-timing and headroom.cache, as properties before variables):
 * {@code try (var p = SystemProperties.set("headroom.conv-timing", "budget")) { ... }}.
 */
public final class SystemProperties implements AutoCloseable {
    private final Map<String, String> before = new LinkedHashMap<>();

    private SystemProperties() {}

    /** Sets each key to the value after it: {@code set(k1, v1, k2, v2, ...)}. */
    public static SystemProperties set(String... keysAndValues) {
        if (keysAndValues.length % 2 != 0) throw new IllegalArgumentException("keys and values in pairs: " + keysAndValues.length + " strings given");
        SystemProperties p = new SystemProperties();
        for (int i = 0; i < keysAndValues.length; i += 2) {
            p.before.putIfAbsent(keysAndValues[i], System.getProperty(keysAndValues[i]));
            System.setProperty(keysAndValues[i], keysAndValues[i + 1]);
        }
        return p;
    }

    @Override
    public void close() {
        before.forEach((k, v) -> {
            if (v == null) System.clearProperty(k);
            else System.setProperty(k, v);
        });
    }
}
