package dev.headroom.server;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * What the SQLite job store costs the server's threads (scripts/bench/job-store): WORKERS threads each
 * run JOBS jobs through it as a server does (insert on submit; claim on admission; PROGRESS progress
 * writes; finish), while one scheduler thread loops as Workers.schedule does (paused(), then the
 * queued jobs) and one reader polls a job's status as clients do. The store is one connection behind
 * one lock, so every thread waits for the others' commits: the scheduler's and the reader's call
 * times are the admission and status delays a commit costs them. Prints the wall time, jobs per
 * second and each thread kind's call times (mean, p50, p99, max). Run it under
 * {@code strace -f -c -e trace=fsync,fdatasync} to count the disk syncs behind them.
 *
 * <p>Usage: StoreBench [workers=8] [jobs=100] [progress=4] [dir=a new temporary folder]
 */
public final class StoreBench {
    private StoreBench() {}

    public static void main(String[] args) throws Exception {
        int workers = args.length > 0 ? Integer.parseInt(args[0]) : 8;
        int jobs = args.length > 1 ? Integer.parseInt(args[1]) : 100;
        int progress = args.length > 2 ? Integer.parseInt(args[2]) : 4;
        Path dir = args.length > 3 ? Files.createDirectories(Path.of(args[3])) : Files.createTempDirectory("store-bench");
        Path db = dir.resolve("bench-" + UUID.randomUUID() + ".db");
        try (SqliteJobStore store = new SqliteJobStore(db)) {
            JobStore.Owner owner = new JobStore.Owner("bench", UUID.randomUUID().toString());
            ConcurrentLinkedQueue<Long> workerNanos = new ConcurrentLinkedQueue<>(), schedulerNanos = new ConcurrentLinkedQueue<>(),
                    readerNanos = new ConcurrentLinkedQueue<>();
            AtomicBoolean done = new AtomicBoolean();
            List<Thread> threads = new ArrayList<>();
            long t0 = System.nanoTime();
            for (int w = 0; w < workers; w++) {
                threads.add(Thread.ofPlatform().start(() -> {
                    for (int n = 0; n < jobs; n++) {
                        String id = UUID.randomUUID().toString();
                        long now = System.currentTimeMillis();
                        timed(workerNanos, () -> store.insert(job(id, now)));
                        timed(workerNanos, () -> store.claim(id, owner, 30_000, System.currentTimeMillis()));
                        for (int p = 1; p <= progress; p++) {
                            int done0 = p;
                            timed(workerNanos, () -> store.progress(id, done0, progress));
                        }
                        timed(workerNanos, () -> store.finish(id, owner, JobState.succeeded, null, "hash", 1, System.currentTimeMillis()));
                    }
                }));
            }
            Thread scheduler = Thread.ofPlatform().start(() -> {
                while (!done.get()) {
                    timed(schedulerNanos, () -> {
                        if (!store.paused()) store.queued(32);
                    });
                }
            });
            Thread reader = Thread.ofPlatform().start(() -> {
                while (!done.get()) {
                    timed(readerNanos, () -> store.counts());
                    try {
                        Thread.sleep(1);
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            });
            for (Thread t : threads) t.join();
            double seconds = (System.nanoTime() - t0) / 1e9;
            done.set(true);
            scheduler.join();
            reader.join();
            int total = workers * jobs;
            System.out.printf("%d jobs (%d workers, %d progress writes each) in %.2f s: %.0f jobs/s%n", total, workers, progress, seconds, total / seconds);
            System.out.println("worker calls:    " + summary(workerNanos));
            System.out.println("scheduler calls: " + summary(schedulerNanos));
            System.out.println("status reads:    " + summary(readerNanos));
        } finally {
            for (String suffix : new String[] {"", "-wal", "-shm"}) Files.deleteIfExists(Path.of(db + suffix));
        }
    }

    static Job job(String id, long now) {
        return new Job(id, 0, JobState.queued, 0, "default", "{}", "input", 64, 64, 1 << 20, 0, 0, 1, 0, null, null, false, null, 0, 0, 0,
                null, false, null, 0, now, 0, 0);
    }

    private static void timed(ConcurrentLinkedQueue<Long> into, Runnable r) {
        long t = System.nanoTime();
        r.run();
        into.add(System.nanoTime() - t);
    }

    private static String summary(ConcurrentLinkedQueue<Long> nanos) {
        long[] v = nanos.stream().mapToLong(Long::longValue).sorted().toArray();
        if (v.length == 0) return "none";
        double mean = java.util.Arrays.stream(v).average().orElse(0) / 1e6;
        return String.format("%d, mean %.2f ms, p50 %.2f ms, p99 %.2f ms, max %.2f ms", v.length, mean, v[v.length / 2] / 1e6,
                v[Math.min(v.length - 1, (int) (v.length * 0.99))] / 1e6, v[v.length - 1] / 1e6);
    }
}
