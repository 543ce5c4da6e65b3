package dev.headroom.runtime.gpu;

import dev.headroom.runtime.CacheDir;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * cuDNN execution plans in their serialised form (CUDNN_ATTR_EXECUTION_PLAN_JSON_REPRESENTATION:
 * for a runtime-compiled engine it carries the compiled kernel), by convolution spec and engine
 * configuration, for one kind of device (name, compute capability, driver and cuDNN versions: cuDNN
 * promises nothing across them). A plan finalised once is then deserialised by every other session
 * and device of that kind, and by later processes (the files), instead of compiled again: the
 * server's H200 x2 run spent 2.4-4.2 s of each session's first job finalising plans (1.2-2.1 s with
 * one GPU), the same plans in every session.
 *
 * <p>Files: {@code <cache>/conv-plans/<sha256 of fingerprint>/<sha256 of key>.json}, each written
 * whole to a temporary name and renamed, so a reader sees a whole plan or none. What cuDNN refuses to
 * deserialise is simply built again ({@link #refused}). In memory at most {@link #MAX_BYTES}, the
 * least recently used forgotten first (the file stays). One per fingerprint per process while any
 * device holds it ({@link #acquire}, {@link #release}), like {@link ConvChoiceStore}.
 */
final class SerializedPlans {
    /** Bytes of serialised plans kept in memory; beyond it the least recently used are read from their files again. */
    static final long MAX_BYTES = 256L << 20;
    /** A serialised plan larger than this is not kept (none seen comes near it). */
    static final int MAX_PLAN_BYTES = 16 << 20;

    /** Stores held by open devices, by folder. */
    private static final HeldByDevices<SerializedPlans> HELD = new HeldByDevices<>();

    private final Path dir;
    private final long maxBytes;
    private final LinkedHashMap<String, byte[]> plans = new LinkedHashMap<>(16, 0.75f, true);
    private long bytes;
    private long hits, misses, stored, refused;

    SerializedPlans(Path dir, long maxBytes) {
        this.dir = dir;
        this.maxBytes = maxBytes;
    }

    /** The process's store for {@code fingerprint} under {@code root} (the cache folder's conv-plans), shared while held. */
    static SerializedPlans acquire(Path root, String fingerprint) {
        return HELD.hold(root.resolve(CacheDir.sha256("headroom-conv-plans 1 " + fingerprint)), d -> new SerializedPlans(d, MAX_BYTES));
    }

    /** One holder fewer; the last one's release forgets the store (its files stay). */
    static void release(SerializedPlans s) {
        HELD.release(s.dir, s);
    }

    /** The serialised plan for {@code key} (a spec and an origin), from memory or its file; null when none was stored. */
    byte[] get(String key) {
        String name = CacheDir.sha256(key);
        synchronized (this) {
            byte[] b = plans.get(name);
            if (b != null) {
                hits++;
                return b;
            }
        }
        byte[] b;
        try {
            Path f = dir.resolve(name + ".json");
            b = Files.isRegularFile(f) && Files.size(f) <= MAX_PLAN_BYTES ? Files.readAllBytes(f) : null;
        } catch (IOException e) {
            b = null;
        }
        synchronized (this) {
            if (b == null) {
                misses++;
                return null;
            }
            hits++;
            keep(name, b);
            return b;
        }
    }

    /** Whether this process holds the serialised plan for {@code key} in memory now (no file is read). */
    synchronized boolean holds(String key) {
        return plans.containsKey(CacheDir.sha256(key));
    }

    /**
     * Stores the serialised plan for {@code key}, here and in its file (a folder that cannot be written
     * only loses the file); one already held is kept. Null (an engine cuDNN does not serialise) is ignored.
     */
    void put(String key, byte[] plan) {
        if (plan == null || plan.length == 0 || plan.length > MAX_PLAN_BYTES) return;
        String name = CacheDir.sha256(key);
        synchronized (this) {
            if (plans.containsKey(name)) return;
            keep(name, plan);
            stored++;
        }
        try {
            Files.createDirectories(dir);
            Path tmp = Files.createTempFile(dir, name, ".tmp");
            try {
                Files.write(tmp, plan);
                Files.move(tmp, dir.resolve(name + ".json"), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } finally {
                Files.deleteIfExists(tmp);
            }
        } catch (IOException | UnsupportedOperationException e) {
            // this process still has it in memory
        }
    }

    /** cuDNN would not make a plan from what {@code key} holds (another library, a torn file): forgotten, so it is built and stored again. */
    void refused(String key) {
        String name = CacheDir.sha256(key);
        synchronized (this) {
            byte[] b = plans.remove(name);
            if (b != null) bytes -= b.length;
            refused++;
        }
        try {
            Files.deleteIfExists(dir.resolve(name + ".json"));
        } catch (IOException e) {
            // the next reader refuses it too, and builds
        }
    }

    private void keep(String name, byte[] b) {
        byte[] old = plans.put(name, b);
        bytes += b.length - (old == null ? 0 : old.length);
        for (var it = plans.entrySet().iterator(); bytes > maxBytes && it.hasNext(); ) {
            var e = it.next();
            if (e.getKey().equals(name)) continue;
            bytes -= e.getValue().length;
            it.remove();
        }
    }

    /** Counts for diagnostics: plans found (memory or file), not found, stored, refused by cuDNN; bytes in memory. */
    synchronized Map<String, Object> stats() {
        return Map.of("hits", hits, "misses", misses, "stored", stored, "refused", refused, "bytes_in_memory", bytes);
    }

    Path dir() {
        return dir;
    }
}
