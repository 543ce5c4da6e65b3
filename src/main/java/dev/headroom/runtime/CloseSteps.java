package dev.headroom.runtime;

/**
 * A close of several native parts as an audit: every step runs, also after an earlier one threw,
 * and the first failure is thrown at the end with the later ones suppressed on it. A stream wait
 * that fails (a CUDA context's sticky error) then no longer leaks the workspace, the pinned
 * buffers and the stream behind it, and the allocator's own audit still runs and names what
 * really leaked.
 */
public final class CloseSteps {
    private CloseSteps() {}

    /**
     * Runs {@code steps} in order, each one whatever the others did (an {@link Error} too, as a
     * {@code finally} would); throws the first failure, the later ones suppressed on it.
     */
    public static void run(Runnable... steps) {
        Throwable first = null;
        for (Runnable s : steps) {
            try {
                s.run();
            } catch (RuntimeException | Error e) {
                if (first == null) first = e;
                else if (e != first) first.addSuppressed(e);
            }
        }
        switch (first) {
            case null -> { }
            case RuntimeException e -> throw e;
            case Error e -> throw e;
            default -> throw new IllegalStateException(first);
        }
    }

    /**
     * Undoes a half-done step after {@code failure}: runs {@code cleanup}, and a cleanup that throws too
     * is suppressed on {@code failure} (which the caller rethrows) instead of hiding it.
     */
    public static void afterFailure(Throwable failure, Runnable cleanup) {
        try {
            cleanup.run();
        } catch (RuntimeException | Error e) {
            if (e != failure) failure.addSuppressed(e);
        }
    }
}
