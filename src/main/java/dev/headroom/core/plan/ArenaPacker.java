package dev.headroom.core.plan;

import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * Places buffers with known lifetimes in one arena so that buffers alive at the same time never
 * overlap, and the arena is small: "greedy by size" (Pisarchyk and Lee, "Efficient Memory
 * Management for Deep Neural Net Inference", 2020).
 *
 * <p>Buffers are placed one at a time. Each goes into the smallest gap, between the buffers
 * already placed whose lifetimes overlap its own, that holds it; if none does, it goes above the
 * highest of them. The order decides the result, so several are tried and the smallest arena
 * kept: greedy by size (largest first: large buffers claim the bottom and small ones fill the
 * holes they leave), greedy by breadth (the steps with the most bytes alive first, their buffers
 * largest first), by first use, by size times lifetime, by lifetime. When none comes within 2% of
 * the lower bound ({@link #lowerBound}), seeded perturbations of the size order are tried as well,
 * as many as a fixed amount of work allows
 * (chains of buffers that each overlap only their neighbours defeat every fixed order).
 * Deterministic: the same buffers give the same offsets. Placement only looks at the buffers a
 * buffer overlaps in time, so a network of 1,000 buffers packs in milliseconds.
 */
public final class ArenaPacker {
    /** Placements the perturbation search may make in all: 100 tries for 100 buffers, 10 for 1,000 (a few ms either way). */
    private static final long PERTURBATION_WORK = 10_000;

    private ArenaPacker() {}

    /**
     * @param sizes bytes of each buffer (already aligned as the caller wants offsets aligned)
     * @param first step at which each buffer becomes alive
     * @param last  step after which it is dead (inclusive)
     * @return the offset of each buffer
     */
    public static long[] pack(long[] sizes, int[] first, int[] last) {
        int n = sizes.length;
        if (n == 0) return new long[0];
        int[][] overlaps = overlaps(first, last);
        long bound = lowerBound(sizes, first, last);
        long[] best = null;
        long bestTop = Long.MAX_VALUE;
        List<java.util.function.Supplier<int[]>> orders = List.of(() -> bySize(sizes, first), () -> byBreadth(sizes, first, last),
                () -> byFirstUse(sizes, first),
                () -> sorted(n, Comparator.<Integer>comparingLong(i -> -sizes[i] * (long) (last[i] - first[i] + 1))),
                () -> sorted(n, Comparator.<Integer>comparingInt(i -> first[i] - last[i]).thenComparingLong(i -> -sizes[i])));
        for (var order : orders) {
            if (bestTop == bound) break;      // nothing can beat the lower bound
            long[] offsets = place(order.get(), sizes, overlaps, bestTop);
            if (offsets == null) continue;      // abandoned: it could not beat the best
            long top = arenaBytes(sizes, offsets);
            if (top < bestTop) {
                bestTop = top;
                best = offsets;
            }
        }
        java.util.Random r = new java.util.Random(n * 31L + bound);
        double[] key = new double[n];
        long tries = Math.max(4, PERTURBATION_WORK / n);
        for (int p = 0; p < tries && bestTop > bound * 1.02; p++) {
            // sizes up to about e^2 = 7x apart may swap places: enough to let a mid-sized buffer
            // claim a spot before a large one whose lifetime it never shares
            for (int i = 0; i < n; i++) key[i] = -Math.log(sizes[i]) - 2 * r.nextDouble();
            long[] offsets = place(sorted(n, Comparator.comparingDouble(i -> key[i])), sizes, overlaps, bestTop);
            if (offsets == null) continue;      // abandoned: it could not beat the best
            long top = arenaBytes(sizes, offsets);
            if (top < bestTop) {
                bestTop = top;
                best = offsets;
            }
        }
        return best;
    }

    /** For each buffer, the buffers whose lifetimes meet its own (a sweep over first use). */
    private static int[][] overlaps(int[] first, int[] last) {
        int n = first.length;
        int[] byFirst = sorted(n, Comparator.comparingInt(i -> first[i]));
        int[] count = new int[n];
        int[] active = new int[n];
        int live = 0;
        // two sweeps: count, then fill, so each list is one int array
        for (int pass = 0; pass < 2; pass++) {
            live = 0;
            int[][] out = pass == 1 ? new int[n][] : null;
            if (pass == 1) {
                for (int i = 0; i < n; i++) out[i] = new int[count[i]];
                java.util.Arrays.fill(count, 0);
            }
            for (int i : byFirst) {
                int kept = 0;
                for (int a = 0; a < live; a++) if (last[active[a]] >= first[i]) active[kept++] = active[a];
                live = kept;
                for (int a = 0; a < live; a++) {
                    int j = active[a];
                    if (pass == 1) {
                        out[i][count[i]] = j;
                        out[j][count[j]] = i;
                    }
                    count[i]++;
                    count[j]++;
                }
                active[live++] = i;
            }
            if (pass == 1) return out;
        }
        throw new AssertionError();
    }

    private static int[] sorted(int n, Comparator<Integer> c) {
        Integer[] o = new Integer[n];
        for (int i = 0; i < n; i++) o[i] = i;
        Arrays.sort(o, c);
        int[] out = new int[n];
        for (int i = 0; i < n; i++) out[i] = o[i];
        return out;
    }

    private static int[] bySize(long[] sizes, int[] first) {
        return sorted(sizes.length, Comparator.<Integer>comparingLong(i -> -sizes[i]).thenComparingInt(i -> first[i]));
    }

    private static int[] byFirstUse(long[] sizes, int[] first) {
        return sorted(sizes.length, Comparator.<Integer>comparingInt(i -> first[i]).thenComparingLong(i -> -sizes[i]));
    }

    /**
     * Steps by the bytes alive in them, most first; each step's buffers not yet taken, largest
     * first. A buffer is taken at the first step of that order inside its lifetime, so the order
     * is: by the best rank of a step in the lifetime (a range-minimum query on a sparse table),
     * then by size.
     */
    private static int[] byBreadth(long[] sizes, int[] first, int[] last) {
        int steps = 0;
        for (int l : last) steps = Math.max(steps, l + 1);
        long[] breadth = new long[steps + 1];
        for (int i = 0; i < sizes.length; i++) {   // difference array, then prefix sums
            breadth[first[i]] += sizes[i];
            breadth[last[i] + 1] -= sizes[i];
        }
        for (int t = 1; t <= steps; t++) breadth[t] += breadth[t - 1];
        int[] stepOrder = sorted(steps, Comparator.<Integer>comparingLong(t -> -breadth[t]));
        int[] rank = new int[steps];
        for (int k = 0; k < steps; k++) rank[stepOrder[k]] = k;
        // table[j][t] = least rank among steps [t, t + 2^j)
        int levels = 32 - Integer.numberOfLeadingZeros(Math.max(1, steps));
        int[][] table = new int[levels][];
        table[0] = rank;
        for (int j = 1; j < levels; j++) {
            int span = 1 << j, half = span >> 1;
            table[j] = new int[steps - span + 1];
            for (int t = 0; t + span <= steps; t++) table[j][t] = Math.min(table[j - 1][t], table[j - 1][t + half]);
        }
        int[] takenAt = new int[sizes.length];
        for (int i = 0; i < sizes.length; i++) {
            int len = last[i] - first[i] + 1, j = 31 - Integer.numberOfLeadingZeros(len);
            takenAt[i] = Math.min(table[j][first[i]], table[j][last[i] - (1 << j) + 1]);
        }
        return sorted(sizes.length, Comparator.<Integer>comparingInt(i -> takenAt[i]).thenComparingLong(i -> -sizes[i])
                .thenComparingInt(i -> first[i]));
    }

    /**
     * Best-fit placement in the given order. The placed neighbours of a buffer are sorted by
     * offset as primitive keys (offset in the high bits, the neighbour's slot in the low 20), which
     * keeps a 1,000-buffer placement free of boxing. A placement that reaches {@code limit} is
     * abandoned (null): a perturbation that cannot beat the best so far stops early.
     */
    private static long[] place(int[] order, long[] sizes, int[][] overlaps, long limit) {
        int n = sizes.length;
        long[] offset = new long[n];
        boolean[] placed = new boolean[n];
        int widest = 0;
        for (int[] o : overlaps) widest = Math.max(widest, o.length);
        long[] keys = new long[widest], ends = new long[widest];
        for (int i : order) {
            int m = 0;
            for (int j : overlaps[i]) {
                if (!placed[j]) continue;
                keys[m] = offset[j] << 20 | m;
                ends[m++] = offset[j] + sizes[j];
            }
            Arrays.sort(keys, 0, m);
            long best = -1, bestGap = Long.MAX_VALUE, top = 0;
            for (int k = 0; k < m; k++) {
                long start = keys[k] >>> 20;
                long gap = start - top;
                if (gap >= sizes[i] && gap < bestGap) {
                    bestGap = gap;
                    best = top;
                }
                top = Math.max(top, ends[(int) (keys[k] & 0xFFFFF)]);
            }
            offset[i] = best >= 0 ? best : top;
            if (offset[i] + sizes[i] >= limit) return null;
            placed[i] = true;
        }
        return offset;
    }

    /** Bytes the arena needs: the highest end of any placed buffer. */
    public static long arenaBytes(long[] sizes, long[] offsets) {
        long top = 0;
        for (int i = 0; i < sizes.length; i++) top = Math.max(top, offsets[i] + sizes[i]);
        return top;
    }

    /** The most bytes alive at any one step: no arena can be smaller. */
    public static long lowerBound(long[] sizes, int[] first, int[] last) {
        int steps = 0;
        for (int l : last) steps = Math.max(steps, l + 1);
        long[] delta = new long[steps + 1];
        for (int i = 0; i < sizes.length; i++) {
            delta[first[i]] += sizes[i];
            delta[last[i] + 1] -= sizes[i];
        }
        long live = 0, max = 0;
        for (long d : delta) {
            live += d;
            max = Math.max(max, live);
        }
        return max;
    }
}
