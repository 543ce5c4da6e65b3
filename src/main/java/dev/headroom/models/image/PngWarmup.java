package dev.headroom.models.image;

import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * When the PNG encoder switches from its scalar code to the Vector API code ({@link PngVectors},
 * {@link SampleBytes}). Vector code is fast only once C2 has compiled it; before, each vector
 * operation runs as a Java loop over its lanes, so a cold row costs about a hundred scalar rows, on
 * every encoding thread at once, and compiling it takes over a second of CPU (scripts/bench/png cold,
 * 2 cores: on the vector code from the start, a fresh JVM's first 4096x4096 RGB image took 4.0 s of
 * CPU, the next 1.7 s; the old code 2.5 s each). So a JVM encodes on the scalar code (as fast as the
 * old) until it has encoded {@link #WARM_AFTER} samples, so that a one-image CLI run never pays the
 * warm-up; then one daemon thread runs the vector code {@link #ROUNDS} times on small rows (about
 * 1.5 s of CPU with the compiler's, once), checking every result against the scalar code's, and
 * only then do the encoders switch. A mismatch (a bug: the two must agree byte for byte) keeps the
 * scalar code and says so on stderr.
 */
final class PngWarmup {
    /** Samples encoded before the warm-up starts: about two 4096x4096 RGB images. */
    static final long WARM_AFTER = 100_000_000L;
    /** Rounds of the warm-up, rows of 256 bytes: after 5,000, the next 1,024 long rows still took 0.3 s of CPU, after 12,000 0.15 s. */
    static final int ROUNDS = 8_000;
    /** Whether the encoders use the vector code; tests set it. */
    static volatile boolean ready;
    private static final AtomicLong encoded = new AtomicLong();
    private static final AtomicBoolean started = new AtomicBoolean();

    private PngWarmup() {}

    static boolean ready() {
        return ready;
    }

    /** Counts {@code samples} encoded; starts the warm-up once the JVM's count passes WARM_AFTER. */
    static void encoded(long samples) {
        if (started.get() || encoded.addAndGet(samples) < WARM_AFTER || !started.compareAndSet(false, true)) return;
        Thread t = new Thread(() -> {
            String bad = check(ROUNDS);
            if (bad == null) ready = true;
            else System.err.println("headroom: PNG encoding stays on its scalar code: the vector code disagreed with it (" + bad + ")");
        }, "png-vector-warmup");
        t.setDaemon(true);
        t.start();
    }

    /** Runs the vector kernels {@code rounds} times on random rows against the scalar code; what differed, or null. */
    static String check(int rounds) {
        Random r = new Random(rounds);
        int len = 256;
        byte[] rows = new byte[2 * len], v = new byte[len], s = new byte[len];
        long[] vs = new long[5], ss = new long[5];
        float[] f = new float[64];
        for (int k = 0; k < rounds; k++) {
            int bpp = 1 + k % 8;
            r.nextBytes(rows);
            PngVectors.sums(rows, len, rows, 0, len, bpp, vs);
            Arrays.fill(ss, 0);
            PngFilters.sums(rows, len, rows, 0, bpp, 0, len, ss);
            if (!Arrays.equals(vs, ss)) return "filter sums " + Arrays.toString(vs) + " vs " + Arrays.toString(ss) + ", bpp " + bpp;
            for (int type = 1; type <= 4; type++) {
                PngVectors.apply(type, rows, len, rows, 0, len, bpp, v, 0);
                PngFilters.apply(type, rows, len, rows, 0, bpp, 0, len, s, 0);
                if (!Arrays.equals(v, s)) return "filter " + type + ", bpp " + bpp;
            }
            for (int i = 0; i < f.length; i++) f[i] = r.nextFloat() * 1.4f - 0.2f;
            f[k % f.length] = (r.nextInt(255) + 0.5f) / 255f;
            int bytes = 1 + k % 2, n = SampleBytes.vectors(f, 0, f.length, bytes, v, 0);
            SampleBytes.scalar(f, 0, n, bytes, s, 0, 0);
            if (!Arrays.equals(v, 0, n * bytes, s, 0, n * bytes)) return bytes * 8 + "-bit samples";
        }
        return null;
    }
}
