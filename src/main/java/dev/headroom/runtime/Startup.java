package dev.headroom.runtime;

import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * When this process reached each step of its start (milliseconds since the process started, as the
 * OS records it): where a user's wait for the first tile on a new machine goes (JVM, model, CUDA
 * context, cuDNN, weights, first pass). Each step is kept the first time it is marked; `bench --json`
 * reports them as {@code startup_ms}. Costs a clock read per mark, nothing when no one asks.
 */
public final class Startup {
    private Startup() {}

    private static final Instant PROCESS_START = ProcessHandle.current().info().startInstant().orElse(Instant.now());
    private static final Map<String, Long> MARKS = new LinkedHashMap<>();

    /** Records that the process reached {@code step} now, unless it was recorded before. */
    public static synchronized void mark(String step) {
        MARKS.putIfAbsent(step, Duration.between(PROCESS_START, Instant.now()).toMillis());
    }

    /** The steps in the order they were reached, with milliseconds since the process started. */
    public static synchronized Map<String, Long> marks() {
        return new LinkedHashMap<>(MARKS);
    }
}
