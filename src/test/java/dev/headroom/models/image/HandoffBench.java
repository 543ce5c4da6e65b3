package dev.headroom.models.image;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CyclicBarrier;

/**
 * Several GPU jobs' PNG outputs at once, the GPU's part simulated by a sleep per band: how long each
 * job's thread is held handing its bands to the writer (time its GPU would sit idle) and how long
 * its finish takes. Uses only ImageWriter's public interface, so scripts/bench/png-handoff runs the
 * same class against another build's classes, side by side.
 *
 * <pre>java -cp CLASSES:... dev.headroom.models.image.HandoffBench JOBS BANDS GPU_MS ROUNDS [WIDTH]</pre>
 *
 * Each band is 16 MiB of RGB samples (what a GPU's output window hands over at a time), smooth
 * gradients with noise, as an upscaled photo.
 */
public final class HandoffBench {
    public static void main(String[] args) throws Exception {
        int jobs = Integer.parseInt(args[0]), bands = Integer.parseInt(args[1]), gpuMs = Integer.parseInt(args[2]);
        int rounds = Integer.parseInt(args[3]), width = args.length > 4 ? Integer.parseInt(args[4]) : 4096;
        int rowBytes = width * 3, rows = (16 << 20) / rowBytes;
        byte[][] band = new byte[4][rows * rowBytes];
        Random rnd = new Random(7);
        for (int b = 0; b < band.length; b++)
            for (int y = 0; y < rows; y++)
                for (int x = 0; x < rowBytes; x++)
                    band[b][y * rowBytes + x] = (byte) (128 + 100 * Math.sin((x / 3) * 0.004 + b) * Math.cos((y + b * rows) * 0.003) + rnd.nextGaussian() * 4);
        Path dir = Files.createTempDirectory("handoff-bench");
        for (int round = 0; round <= rounds; round++) {   // round 0 warms the JIT and is not reported
            long[] handoff = new long[jobs], finish = new long[jobs], total = new long[jobs];
            CyclicBarrier go = new CyclicBarrier(jobs);
            List<Thread> threads = new ArrayList<>();
            long t0 = System.nanoTime();
            for (int j = 0; j < jobs; j++) {
                int job = j;
                threads.add(Thread.ofPlatform().start(() -> {
                    try {
                        go.await();
                        long s = System.nanoTime();
                        Path out = dir.resolve("j" + job + ".png");
                        try (ImageWriter w = ImageWriter.open(out, new Encoding(ImageFormat.PNG, null, 1), width, rows * bands, 3, 8)) {
                            for (int b = 0; b < bands; b++) {
                                Thread.sleep(gpuMs);   // the GPU's tiles for this band
                                long h = System.nanoTime();
                                w.sampleRows(band[(job + b) % band.length], 0, rows);
                                handoff[job] += System.nanoTime() - h;
                            }
                            long f = System.nanoTime();
                            w.finish();
                            finish[job] = System.nanoTime() - f;
                        }
                        total[job] = System.nanoTime() - s;
                        Files.delete(out);
                    } catch (Exception e) {
                        throw new RuntimeException(e);
                    }
                }));
            }
            for (Thread t : threads) t.join();
            long wall = System.nanoTime() - t0;
            if (round == 0) continue;
            System.out.printf("round %d: %d jobs x %d bands of %d x %d, %d ms GPU a band: wall %.2f s; per job: handing bands over %.0f ms"
                            + " (max %.0f), finish %.0f ms, total %.2f s (GPU %.2f s)%n", round, jobs, bands, width, rows, gpuMs, wall / 1e9,
                    mean(handoff) / 1e6, Arrays.stream(handoff).max().orElse(0) / 1e6, mean(finish) / 1e6, mean(total) / 1e9, bands * gpuMs / 1e3);
        }
        Files.delete(dir);
    }

    private static double mean(long[] v) {
        return Arrays.stream(v).average().orElse(0);
    }
}
