package dev.headroom.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.headroom.core.Sizes;
import dev.headroom.core.image.FloatImage;
import dev.headroom.core.residency.ResidencyPolicy.Priority;
import dev.headroom.runtime.cpu.CpuDevice;
import dev.headroom.runtime.cpu.CpuOps;
import dev.headroom.runtime.memory.Budget;
import dev.headroom.runtime.memory.CachingAllocator;
import dev.headroom.runtime.memory.MemoryOptions;
import dev.headroom.testing.Randoms;
import dev.headroom.testing.SmallModels;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * Many jobs on one device at once, on the CPU backend: 8 threads, each with its own session,
 * run 100 jobs each over 32 models of four families (RDN, RRDN, SRVGG, RRDBNet; eight seeds each),
 * and the RRDBNets once more as streamed models (within half their kernels; a component each)
 * shared through one residency manager, under a ledger budget that holds every model in use but
 * not all of them, so models are evicted and reloaded (from the host cache or from "disk") all
 * the time. Every output must equal, bit for bit, the same job run alone on a fresh backend; after
 * the run the ledger must be exactly at its baseline (nothing charged anywhere). A watchdog fails
 * the test with every thread's stack if the run stalls, so a deadlock cannot hang CI.
 */
class ConcurrencyStressTest {
    private static final int THREADS = 8, JOBS = 100, SEEDS = 8, TILE = 20, OVERLAP = 4;
    private static final long WATCHDOG_SECONDS = 240;

    private record Job(String family, long seed, int image) {
        String name() {
            return family + "-" + seed;
        }
    }

    @Test
    void eightThreadsOfMixedJobsMatchTheJobsRunAloneAndLeaveTheLedgerAtBaseline() throws Exception {
        Random r = new Random(Randoms.seed());
        List<FloatImage> images = new ArrayList<>();
        for (int i = 0; i < 3; i++) images.add(randomImage(r, 28 + 4 * i, 24 + 6 * i));

        // each (model, image) run alone: the reference; and the sizes that set the budget
        Map<Job, float[]> alone = new ConcurrentHashMap<>();
        Map<Long, Long> streamBudget = new ConcurrentHashMap<>();   // the streamed RRDBNets' weight budgets, by seed
        long largestWeights = 0, allWeights = 0, largestRun = 0;
        for (String f : SmallModels.FAMILIES) {
            for (long seed = 1; seed <= SEEDS; seed++) {
                Residency.Source src = SmallModels.build(f, seed);
                if (f.equals("rrdbnet")) {
                    try (CpuOps ops = new CpuOps()) {
                        long kernels = 0;
                        for (var n : src.graph().nodes()) if (n.op() instanceof dev.headroom.core.graph.Op.Conv2d c) kernels += ops.kernelBytes(c, src.weights().get(c.weight()));
                        streamBudget.put(seed, kernels / 2);
                        try (PreparedWeights p = PreparedWeights.streamed(src.graph(), src.weights(), ops, kernels / 2, WeightStream.AUTO_SLOTS)) {
                            allWeights += ops.memory().usedByCategory().get("weights");   // less than resident: largestWeights still bounds it
                        }
                    }
                }
                for (int i = 0; i < images.size(); i++) {
                    try (CpuOps ops = new CpuOps(); GraphRunner runner = new GraphRunner(src.graph(), src.weights(), ops)) {
                        long w = ops.memory().usedByCategory().get("weights");
                        largestWeights = Math.max(largestWeights, w);
                        if (i == 0) allWeights += w;
                        alone.put(new Job(f, seed, i), new TiledUpscaler(runner, 1f).upscale(images.get(i), TILE, OVERLAP, null).data());
                        largestRun = Math.max(largestRun, ops.memory().stats().allocatedPeak());
                    }
                }
            }
        }
        // room for every thread's job at its peak, in whole 2 MiB segments plus one for
        // fragmentation, and a model in use (or loading) for each thread: so no job ever lacks
        // memory, but the models cannot all stay
        long segment = CachingAllocator.SMALL_SEGMENT;
        long budget = ((THREADS * largestRun + segment - 1) / segment + 1) * segment + THREADS * largestWeights;
        System.out.printf("largest run %s, largest weights %s, all weights %s, budget %s%n", Sizes.format(largestRun), Sizes.format(largestWeights),
                Sizes.format(allWeights), Sizes.format(budget));
        assertTrue(allWeights > budget - THREADS * largestRun - segment, "the budget " + Sizes.format(budget) + " must force evictions; all weights: "
                + Sizes.format(allWeights));

        Priority[] classes = {Priority.LOW, Priority.NORMAL, Priority.HIGH};
        try (CpuDevice device = new CpuDevice(MemoryOptions.DEFAULT.withBudget(budget))) {
            Budget root = device.memory().ledger();
            long baseline = root.used();
            AtomicLong fromDisk = new AtomicLong(), streamedJobs = new AtomicLong();
            ExecutorService pool = Executors.newFixedThreadPool(THREADS);
            List<Future<Integer>> done = new ArrayList<>();
            try (Residency models = new Residency(device, 2 * largestWeights)) {
                for (int t = 0; t < THREADS; t++) {
                    long threadSeed = r.nextLong();
                    int thread = t;
                    done.add(pool.submit(() -> {
                        Random tr = new Random(threadSeed);
                        int ran = 0;
                        try (Session s = device.openSession()) {
                            for (int j = 0; j < JOBS; j++) {
                                Job job = new Job(SmallModels.FAMILIES[tr.nextInt(4)], 1 + tr.nextInt(SEEDS), tr.nextInt(images.size()));
                                Priority p = classes[(int) (job.seed() % 3)];
                                // one RRDBNet job in two runs the streamed component of the same model: the same output bit for bit
                                boolean streamed = job.family().equals("rrdbnet") && tr.nextBoolean();
                                String name = streamed ? job.name() + "-streamed" : job.name();
                                long weightBudget = streamed ? streamBudget.get(job.seed()) : Residency.ALL_RESIDENT;
                                Residency.Loader disk = () -> {
                                    fromDisk.incrementAndGet();
                                    return SmallModels.build(job.family(), job.seed());
                                };
                                try (Residency.Lease m = models.acquire(name, p, disk, s, weightBudget);
                                     GraphRunner runner = new GraphRunner(m.graph(), m.weights(), s);
                                     var scope = device.memory().job("t" + thread + "-j" + j, Long.MAX_VALUE)) {
                                    if (streamed != (m.weights().stream() != null)) throw new AssertionError(name + " streamed: " + (m.weights().stream() != null));
                                    if (streamed) streamedJobs.incrementAndGet();
                                    float[] out = new TiledUpscaler(runner, m.valueRange()).upscale(images.get(job.image()), TILE, OVERLAP, null).data();
                                    assertArrayEquals(alone.get(job), out, job + " in thread " + thread + " against the same job alone");
                                }
                                ran++;
                            }
                        }
                        return ran;
                    }));
                }
                pool.shutdown();
                if (!pool.awaitTermination(WATCHDOG_SECONDS, TimeUnit.SECONDS)) {
                    StringBuilder dump = new StringBuilder();
                    for (Map.Entry<Thread, StackTraceElement[]> e : Thread.getAllStackTraces().entrySet()) {
                        dump.append('"').append(e.getKey().getName()).append("\" ").append(e.getKey().getState()).append('\n');
                        for (StackTraceElement el : e.getValue()) dump.append("    at ").append(el).append('\n');
                    }
                    System.out.println(dump);
                    pool.shutdownNow();
                    fail("stalled: not done after " + WATCHDOG_SECONDS + " s (a deadlock?); thread dump above");
                }
                int jobs = 0;
                for (Future<Integer> f : done) jobs += f.get();
                assertEquals(THREADS * JOBS, jobs);
                long[] counts = models.counts();
                System.out.printf("%d jobs on %d threads in a %s budget: %d loads from disk, %d reloads from the host cache, %d evictions; rungs %s%n",
                        jobs, THREADS, Sizes.format(budget), counts[0], counts[1], counts[2], device.memory().rungs());
                assertTrue(counts[2] > 0, "the budget forced evictions");
                assertTrue(streamedJobs.get() > 0, "some jobs ran streamed models");
                System.out.printf("%d of them on streamed models%n", streamedJobs.get());
                assertEquals(counts[0], fromDisk.get(), "every load from disk went through the loader");
            }
            device.memory().emptyCache();
            assertEquals(baseline, root.used(), "ledger back at its baseline: " + root + " " + device.memory().usedByCategory());
            for (Budget b : root.children()) assertEquals(0, b.used(), b.path() + " holds nothing");
            assertEquals(0, device.memory().allocatedBytes());
        }
    }

    private static FloatImage randomImage(Random r, int w, int h) {
        FloatImage img = FloatImage.blank(w, h, 3, 8);
        float[] d = img.data();
        for (int i = 0; i < d.length; i++) d[i] = r.nextFloat();
        return img;
    }
}
