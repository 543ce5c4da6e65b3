package dev.headroom.cli;

import dev.headroom.core.residency.ResidencyPolicy.Priority;
import dev.headroom.runtime.Residency;
import dev.headroom.runtime.Session;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * {@code bench --host-cache SIZE}: a model's weights loaded through the residency manager from its
 * file, then evicted and reloaded from the host copy the manager keeps ({@link Residency}: pinned,
 * in the device's layout on a GPU), each timed {@code runs} times, side by side on one device.
 * A load from the file runs in a manager of its own with no host cache, so every one reads the
 * file, parses it and prepares the weights; a reload is the copy back alone.
 */
final class ReloadBench {
    private ReloadBench() {}

    /** Medians of loads from the file and reloads from the host copy, with the bytes on the device and the rates. */
    static Map<String, Object> run(Session session, Residency.Loader file, long hostCache, int runs) throws Exception {
        var memory = session.device().memory();
        double[] disk = new double[runs], reload = new double[runs];
        long bytes = 0;
        for (int i = 0; i < runs; i++) {
            try (Residency cold = new Residency(session.device(), 0)) {
                long t0 = System.nanoTime();
                try (Residency.Lease l = cold.acquire("bench-load", Priority.NORMAL, file, session)) {
                    disk[i] = (System.nanoTime() - t0) / 1e6;
                }
            }
        }
        try (Residency models = new Residency(session.device(), hostCache)) {
            try (Residency.Lease l = models.acquire("bench", Priority.NORMAL, file, session)) {
                bytes = memory.weights(l.key()).used();
            }
            for (int i = 0; i < runs; i++) {
                models.makeRoom(memory.headroom() + bytes);   // evicts it: the only idle model
                var s = models.status().getFirst();
                if (s.where() != dev.headroom.core.residency.ResidencyPolicy.Where.HOST) {
                    throw new Main.UsageError("--host-cache " + dev.headroom.core.Sizes.format(hostCache) + " holds no copy of these weights ("
                            + dev.headroom.core.Sizes.format(bytes) + " on the device): give a larger --host-cache");
                }
                long t0 = System.nanoTime();
                try (Residency.Lease l = models.acquire("bench", Priority.NORMAL, file, session)) {
                    reload[i] = (System.nanoTime() - t0) / 1e6;
                }
            }
            if (models.counts()[0] != 1 || models.counts()[1] != runs) throw new IllegalStateException("expected 1 load and " + runs + " reloads, counted " + Arrays.toString(models.counts()));
        }
        Arrays.sort(disk);
        Arrays.sort(reload);
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("weight_bytes", bytes);
        r.put("load_from_file_ms", round(disk[runs / 2]));
        r.put("load_from_file_first_ms", round(disk[0]));
        r.put("reload_from_host_copy_ms", round(reload[runs / 2]));
        r.put("load_gb_per_s", round(bytes / 1e6 / disk[runs / 2]));
        r.put("reload_gb_per_s", round(bytes / 1e6 / reload[runs / 2]));
        r.put("reload_speedup", round(disk[runs / 2] / reload[runs / 2]));
        return r;
    }

    private static double round(double v) {
        return Math.round(v * 1000) / 1000.0;
    }
}
