package dev.headroom.server;

import java.nio.file.Path;
import java.util.Map;

/**
 * Runs one admitted job on a device, inside the memory reserved for it. The server's scheduling
 * sees only this, so the runtime beneath can change (one backend per job today; sessions on a
 * shared device later) without touching admission, the store or the API.
 */
public interface JobRunner {

    /** Thrown out of {@link #run} when {@link Control#stop} said so at a tile boundary. */
    final class Stopped extends RuntimeException {
        public Stopped() {
            super("stopped", null, false, false);
        }
    }

    /** How the runner talks back: polled between tiles. */
    interface Control {
        /** True when the job must stop now (cancelled, timed out, or the server is shutting down). */
        boolean stop();

        void progress(int done, int total);

        /**
         * Time the job spent in one phase (read, session, weights, upscale, ...), in nanoseconds;
         * the server adds them to the job's end event and to its metrics, so a run tells where its
         * time went. A phase may be reported more than once: the times add up.
         */
        default void phase(String name, long nanos) {}

        /**
         * How the job ran, for its end event: the session it ran on ({@code session}, the device's
         * name and the session's number there) and, where the backend says, the session's
         * convolution engines after the job ({@code conv_strategies}, e.g. "FUSED (heuristic)": 3).
         * On a GPU two runs of one job give the same bytes when they ran the same engines.
         */
        default void ran(String key, Object value) {}

        /**
         * The job is done with its device: its device memory freed, its session and weights given
         * back. What is left (finishing its file) runs on the host, and the device may admit the
         * next job meanwhile. A runner that never says so leaves the device when it returns.
         */
        default void leftDevice() {}
    }

    /** Runs {@code work}, telling {@code control} how long it took as {@code phase}. */
    static <T> T timed(Control control, String phase, java.util.concurrent.Callable<T> work) throws Exception {
        long t0 = System.nanoTime();
        try {
            return work.call();
        } finally {
            control.phase(phase, System.nanoTime() - t0);
        }
    }

    /**
     * @param input       the uploaded image
     * @param output      where the result goes (written atomically)
     * @param encoding    the result's format
     * @param reservation bytes the job may use on the device
     */
    record Request(Job job, ModelCatalog.Loaded model, Path input, Path output, dev.headroom.models.image.Encoding encoding, long reservation,
                   long maxPixels, int overlap) {}

    /** What a finished run reports: rungs of the degrade ladder taken, and the most device memory it held. */
    record Outcome(Map<String, Long> rungs, long peakAllocatedBytes) {}

    Outcome run(Request request, DeviceSlot device, Control control) throws Exception;
}
