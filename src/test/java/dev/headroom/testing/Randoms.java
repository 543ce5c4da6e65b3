package dev.headroom.testing;

import java.util.Random;

/** Seeded random data; the seed is printed so a failure can be replayed. */
public final class Randoms {
    private Randoms() {}

    public static long seed() {
        long s = Long.getLong("headroom.seed", System.nanoTime());
        System.out.println("random seed " + s + " (replay with -Dheadroom.seed=" + s + ")");
        return s;
    }

    public static float[] floats(Random r, int n, float scale) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) f[i] = (float) (r.nextGaussian() * scale);
        return f;
    }
}
