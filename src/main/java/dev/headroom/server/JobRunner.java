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
