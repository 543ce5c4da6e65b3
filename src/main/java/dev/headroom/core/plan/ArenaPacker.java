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
    /** Placements the perturbation search may make in all: 200 tries for 100 buffers, 20 for 1,000 (a few ms either way). */
    private static final long PERTURBATION_WORK = 20_000;

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
            long[] offsets = place(order.get(), sizes, overlaps);
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
            long[] offsets = place(sorted(n, Comparator.comparingDouble(i -> key[i])), sizes, overlaps);
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
        List<List<Integer>> adj = new java.util.ArrayList<>();
        for (int i = 0; i < n; i++) adj.add(new java.util.ArrayList<>());
        List<Integer> active = new java.util.ArrayList<>();
        for (int i : byFirst) {
            active.removeIf(j -> last[j] < first[i]);
            for (int j : active) {
                adj.get(i).add(j);
                adj.get(j).add(i);
            }
            active.add(i);
        }
        int[][] out = new int[n][];
        for (int i = 0; i < n; i++) out[i] = adj.get(i).stream().mapToInt(Integer::intValue).toArray();
        return out;
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

    /** Steps by the bytes alive in them, most first; each step's buffers not yet taken, largest first. */
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
        int[] bySize = bySize(sizes, first);
        boolean[] taken = new boolean[sizes.length];
        int[] out = new int[sizes.length];
        int k = 0;
        for (int t : stepOrder) {
            for (int i : bySize) {
                if (!taken[i] && first[i] <= t && t <= last[i]) {
                    taken[i] = true;
                    out[k++] = i;
                }
            }
            if (k == sizes.length) break;
        }
        return out;
    }

    /** Best-fit placement in the given order. */
    private static long[] place(int[] order, long[] sizes, int[][] overlaps) {
        int n = sizes.length;
        long[] offset = new long[n];
        boolean[] placed = new boolean[n];
        for (int i : order) {
            int m = 0;
            long[][] near = new long[overlaps[i].length][];
            for (int j : overlaps[i]) if (placed[j]) near[m++] = new long[] {offset[j], offset[j] + sizes[j]};
            Arrays.sort(near, 0, m, Comparator.comparingLong(x -> x[0]));
            long best = -1, bestGap = Long.MAX_VALUE, top = 0;
            for (int k = 0; k < m; k++) {
                long gap = near[k][0] - top;
                if (gap >= sizes[i] && gap < bestGap) {
                    bestGap = gap;
                    best = top;
                }
                top = Math.max(top, near[k][1]);
            }
            offset[i] = best >= 0 ? best : top;
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
