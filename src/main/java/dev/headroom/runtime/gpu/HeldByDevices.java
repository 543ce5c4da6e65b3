package dev.headroom.runtime.gpu;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Function;

/**
 * Objects one per file (or folder) per process, shared by every open device that holds them: made
 * at the first {@link #hold}, forgotten at the last {@link #release}, so a device opened after all
 * let go reads the file again, as a new process would ({@link ConvChoiceStore}, {@link SerializedPlans}).
 */
final class HeldByDevices<V> {
    private final Map<Path, V> open = new HashMap<>();
    private final Map<Path, Integer> holders = new HashMap<>();

    /** The object for {@code key}, made by {@code make} when no device holds one; one holder more. */
    synchronized V hold(Path key, Function<Path, V> make) {
        V v = open.computeIfAbsent(key, make);
        holders.merge(key, 1, Integer::sum);
        return v;
    }

    /** One holder fewer of {@code v} (a value no longer held, or never, is ignored); the last one's release forgets it. */
    synchronized void release(Path key, V v) {
        Integer n = holders.get(key);
        if (n == null || open.get(key) != v) return;
        if (n > 1) {
            holders.put(key, n - 1);
        } else {
            holders.remove(key);
            open.remove(key);
        }
    }
}
