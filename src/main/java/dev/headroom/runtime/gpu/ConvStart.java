package dev.headroom.runtime.gpu;

/**
 * How {@link Convolutions} treats a shape that has no timed choice: whether it times every candidate
 * before the first run (HEADROOM_CONV_TIMING) and, if not, how it starts (HEADROOM_CONV_START).
 */
final class ConvStart {
    private ConvStart() {}

    /**
     * How a shape met for the first time with no remembered choice starts: on cuDNN's heuristic
     * choice, untimed ({@code budget}, the default), or timing every candidate before its first run
     * ({@code full}, what `bench` uses for steady-state figures). Set by the system property
     * {@code headroom.conv-timing} or the variable HEADROOM_CONV_TIMING.
     */
    static boolean timeEverything() {
        String v = System.getProperty("headroom.conv-timing", System.getenv().getOrDefault("HEADROOM_CONV_TIMING", "budget"));
        return v.equals("full");
    }

    /** How long an untimed shape waits for its background build before it starts on the precompiled engine. */
    static final long GRACE_NANOS = 10_000_000;

    /**
     * How an untimed shape starts (HEADROOM_CONV_START or -Dheadroom.conv-start):
     * <ul>
     * <li>{@code background} (the default): on an engine that ships compiled ({@link ConvGraph#buildPrecompiled})
     *     while cuDNN's first choice is finalised on the device's plan workers ({@link PlanService}); a build that
     *     finishes within {@link #GRACE_NANOS} (or that another session finished) is taken at once, the rest at
     *     the shape's next call once built, and all of them before a pass is recorded ({@link Convolutions#settleBackground}),
     *     so no recording and no long job keeps the slow engines. A shape whose first choice an earlier
     *     process met starts on it at once (remembered untimed; HEADROOM_CONV_REMEMBER_FIRST=0 turns that off).
     *     Without the plan service (HEADROOM_CONV_SHARED_PLANS=0) nothing builds in the background: it starts as
     *     {@code precompiled} does.
     * <li>{@code first}: cuDNN's first choice while the session waits: finalised on one of the device's plan workers
     *     (or taken from another session that built it) and lent; with HEADROOM_CONV_SHARED_PLANS=0 finalised on the
     *     session's own handle, on its thread.
     * <li>{@code precompiled}: only the engine that ships compiled, until the shape is timed.
     * </ul>
     * Measured on the H200 with empty caches, in one call (`COLDSTART_MODES="first background"
     * COLDSTART_JOBS=1 scripts/device-bench coldstart`): the first 256 tile's pass took 8.56 s with
     * {@code first} (8.43 s of it finalising 17 fused plans that compile at run time) and 1.10 s with
     * {@code background}; the 4096x4096 x4 job 12.24 s cold / 5.40 s warm with {@code first}, 8.07 s /
     * 5.19 s with {@code background} (warm, five more runs in that call: 5.75 and 5.66 s against 5.13-5.69 s).
     * Before the device's plan service, {@code background}'s warm job was 24% slower (7.0 s against 5.6 s,
     * the last stop's call): it finalised each adopted shape a second time on the session's thread, after
     * its precompiled start. In this call a warm first-choice finalisation took 770 ms for 17 shapes, and
     * the precompiled starts with their adoption 702 ms for 16 (HEADROOM_CONV_REMEMBER_FIRST=0): together
     * about the 1.4 s lost (inferred from these parts; the old code did not run in this call). Now a worker's
     * graph is lent, not finalised again, and a remembered first choice skips the precompiled start.
     * {@code precompiled} alone runs the unfused engines 21x slower (the 4096 job 47.4 s cold, against 11.4 s).
     */
    static String startMode() {
        String v = System.getProperty("headroom.conv-start", System.getenv("HEADROOM_CONV_START"));
        if (v == null || v.isBlank() || v.equals("default")) return "background";
        if (!v.equals("background") && !v.equals("first") && !v.equals("precompiled"))
            throw new IllegalArgumentException("HEADROOM_CONV_START=" + v + " is not a start mode: use background (the default), first or precompiled");
        return v;
    }
}
