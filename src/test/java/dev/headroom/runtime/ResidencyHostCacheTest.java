package dev.headroom.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.residency.ResidencyPolicy.Priority;
import dev.headroom.core.residency.ResidencyPolicy.Status;
import dev.headroom.core.residency.ResidencyPolicy.Where;
import dev.headroom.runtime.cpu.CpuDevice;
import dev.headroom.runtime.memory.DeviceMemory;
import dev.headroom.runtime.memory.MemoryOptions;
import dev.headroom.runtime.memory.MemoryTrace;
import dev.headroom.testing.Randoms;
import dev.headroom.testing.SmallModels;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The residency manager with its host cache, on the CPU device, over random sequences of leases,
 * releases, make-room requests and allocations that make the ladder evict: after every step the
 * host copies held stay within the host budget; a model is read from its file only when it had
 * neither device weights nor a host copy, and reloaded (RELOAD, no file read) exactly when it had
 * a host copy; each model's ledger node holds its weights exactly while they are on the device;
 * a model reloaded from its host copy computes bit for bit what it computed when first loaded;
 * and after closing, the ledger is back at zero.
 */
class ResidencyHostCacheTest {
    private static final int MODELS = 6, STEPS = 120, TRIALS = 6;

    @Test
    void randomSequencesKeepHostCopiesWithinBudgetAndReloadThemExactly() throws Exception {
        Random r = new Random(Randoms.seed());
        String[] families = new String[MODELS];
        Map<String, Residency.Source> sources = new HashMap<>();
        for (int m = 0; m < MODELS; m++) {
            families[m] = SmallModels.FAMILIES[m % SmallModels.FAMILIES.length];
            sources.put("m" + m, SmallModels.build(families[m], 100 + m));
        }
        Tensor input = Tensor.wrap(randomFloats(r, 12 * 12 * 3), 1, 12, 12, 3);
        long oneModel = weightBytes(sources.get("m3"));   // rrdbnet, the largest
        long[] total = new long[3];
        for (int trial = 0; trial < TRIALS; trial++) {
            long hostBudget = switch (trial % 3) {
                case 0 -> 0;
                case 1 -> oneModel + oneModel / 2;           // about one copy
                default -> 4 * oneModel;                      // most of them
            };
            try (CpuDevice device = new CpuDevice(new MemoryOptions(3 * oneModel + (6L << 20), false, 1 << 16, dev.headroom.runtime.memory.Pressure.Thresholds.DEFAULT))) {
                long[] c = run(r, device, hostBudget, sources, input);
                System.out.printf("host cache %d bytes: %d loads from disk, %d reloads from host copies, %d evictions%n", hostBudget, c[0], c[1], c[2]);
                for (int i = 0; i < 3; i++) total[i] += c[i];
                device.memory().emptyCache();
                assertEquals(0, device.memory().ledger().used(), "ledger back at zero after closing (trial " + trial + ")");
            }
        }
        assertTrue(total[1] > 0 && total[2] > 0, "the sequences evicted and reloaded: " + java.util.Arrays.toString(total));
    }

    /** One random sequence; returns the manager's counts (loads, reloads, evictions). */
    private static long[] run(Random r, CpuDevice device, long hostBudget, Map<String, Residency.Source> sources, Tensor input) throws Exception {
        DeviceMemory memory = device.memory();
        Map<String, Integer> reads = new HashMap<>();
        Map<String, float[]> firstOutput = new HashMap<>();
        ArrayDeque<Residency.Lease> open = new ArrayDeque<>();
        long expectLoads = 0, expectReloads = 0;
        long[] counts;
        try (Residency models = new Residency(device, hostBudget); Session s = device.openSession()) {
            for (int step = 0; step < STEPS; step++) {
                switch (r.nextInt(6)) {
                    case 0, 1, 2 -> {
                        String m = "m" + r.nextInt(MODELS);
                        Where before = where(models, m + " fp32");
                        int readsBefore = reads.getOrDefault(m, 0);
                        Residency.Lease lease = models.acquire(m, Priority.values()[1 + r.nextInt(3)], () -> {
                            reads.merge(m, 1, Integer::sum);
                            return sources.get(m);
                        }, s);
                        int read = reads.getOrDefault(m, 0) - readsBefore;
                        assertEquals(before == Where.DISK ? 1 : 0, read, m + " was " + before + ": read from its file only from DISK");
                        if (before == Where.DISK) expectLoads++;
                        if (before == Where.HOST) expectReloads++;
                        try (GraphRunner runner = new GraphRunner(lease.graph(), lease.weights(), s)) {
                            float[] out = runner.run(input).data;
                            float[] first = firstOutput.putIfAbsent(m, out);
                            if (first != null) assertArrayEquals(first, out, m + " after " + before + " computes as when first loaded");
                        }
                        if (open.size() < 2 && r.nextBoolean()) open.add(lease);   // at most two held: they always fit beside a third
                        else lease.close();
                    }
                    case 3 -> {
                        if (!open.isEmpty()) open.poll().close();
                    }
                    case 4 -> models.makeRoom(1 + (long) (r.nextDouble() * memory.ledger().limit()));
                    default -> {
                        // an allocation that only fits once idle weights go: the ladder's evict rung
                        long want = Math.max(1, memory.headroom() + (long) (r.nextDouble() * 2 * sources.size() * (1L << 16)));
                        try {
                            memory.free(memory.allocate(want));
                        } catch (dev.headroom.runtime.memory.DeviceOutOfMemory e) {
                            // the models in use hold too much: allowed
                        }
                    }
                }
                check(models, memory, hostBudget, open);
                long[] now = models.counts();
                assertEquals(expectLoads, now[0], "loads from disk");
                assertEquals(expectReloads, now[1], "reloads from host copies");
            }
            while (!open.isEmpty()) open.poll().close();
            counts = models.counts();
        }
        long traced = memory.trace().events().stream().filter(e -> e.kind() == MemoryTrace.Kind.RELOAD).count();
        assertTrue(memory.trace().dropped() > 0 || traced == expectReloads, "every reload traced: " + traced + " of " + expectReloads);
        if (hostBudget == 0) assertEquals(0, expectReloads, "no host cache, no reloads");
        return counts;
    }

    private static void check(Residency models, DeviceMemory memory, long hostBudget, ArrayDeque<Residency.Lease> open) {
        long host = 0;
        for (Status s : models.status()) {
            host += s.hostBytes();
            assertEquals(s.hostCopy(), s.hostBytes() > 0, s.toString());
            long node = memory.weights(s.key()).used();
            if (s.where() == Where.DEVICE) assertEquals(s.deviceBytes(), node, "ledger node of " + s);
            else assertEquals(0, node, "an evicted model holds no device memory: " + s);
        }
        assertTrue(host <= hostBudget, "host copies " + host + " within the budget " + hostBudget);
        for (Residency.Lease l : open) assertEquals(Where.DEVICE, where(models, l.key()), "a leased model stays on the device");
    }

    private static Where where(Residency models, String key) {
        for (Status s : models.status()) if (s.key().equals(key)) return s.where();
        return Where.DISK;
    }

    private static long weightBytes(Residency.Source src) {
        try (CpuDevice d = new CpuDevice(); Residency m = new Residency(d, 0); Session s = d.openSession();
             Residency.Lease l = m.acquire("x", Priority.NORMAL, () -> src, s)) {
            return d.memory().weights("x fp32").used();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static float[] randomFloats(Random r, int n) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) f[i] = r.nextFloat();
        return f;
    }
}
