package dev.headroom.core.residency;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Which layers of a model stay on the device and which are streamed, when its weights do not fit
 * the budget given them (weight streaming, partial residency). Pure: sizes in, decision out.
 *
 * <p>Every forward pass walks the layers in the same order, so a fixed resident set is right and
 * LRU is wrong (LRU would evict exactly the layer needed next). The budget pays first for
 * {@code slots} prefetch slots, each as large as the largest streamed layer, charged up front;
 * what is left keeps layers resident, in this order: layers a pass uses more than once (a banded
 * tail runs its layers once per band: streaming them would copy them once per band), then in walk
 * order (the earliest layers resident, so the first streamed copies overlap their compute). A
 * budget that holds everything streams nothing and needs no slots.
 *
 * @param resident     per layer (walk order): kept on the device
 * @param slots        prefetch slots (0 when nothing is streamed)
 * @param slotBytes    bytes of each slot: the largest streamed layer
 * @param residentBytes bytes of the resident layers
 * @param streamedBytes bytes copied per pass (each streamed use once)
 */
public record StreamSplit(boolean[] resident, int slots, long slotBytes, long residentBytes, long streamedBytes) {

    /** Device bytes the split holds: resident layers and the slots. */
    public long deviceBytes() {
        return residentBytes + slots * slotBytes;
    }

    public int streamedCount() {
        int n = 0;
        for (boolean r : resident) if (!r) n++;
        return n;
    }

    /**
     * @param bytes        each layer's device bytes, in walk order
     * @param usesPerPass  how many times a pass uses each layer (1 unless a banded tail repeats it)
     * @param budget       bytes the model's weights may hold on the device, slots included
     * @param slots        prefetch slots to use when something must be streamed (at least 1; 2 or
     *                     more let a copy run while the previous layer computes)
     * @throws IllegalArgumentException when the budget cannot hold the slots for the largest layer
     */
    public static StreamSplit choose(long[] bytes, int[] usesPerPass, long budget, int slots) {
        if (slots < 1) throw new IllegalArgumentException("weight streaming needs at least 1 prefetch slot, got " + slots);
        if (bytes.length != usesPerPass.length) throw new IllegalArgumentException(bytes.length + " layer sizes but " + usesPerPass.length + " use counts");
        int n = bytes.length;
        long total = 0, largest = 0;
        for (long b : bytes) {
            total += b;
            largest = Math.max(largest, b);
        }
        boolean[] resident = new boolean[n];
        if (total <= budget) {
            java.util.Arrays.fill(resident, true);
            return new StreamSplit(resident, 0, 0, total, 0);
        }
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < n; i++) order.add(i);
        order.sort(Comparator.comparingInt((Integer i) -> usesPerPass[i] > 1 ? 0 : 1).thenComparingInt(i -> i));
        // the slot size is the largest streamed layer, so every layer larger than the slots must
        // be resident: try each distinct layer size as the slot size (largest first; always
        // possible when the budget holds slots of the largest layer), fill the rest in order, and
        // keep the candidate that streams the fewest bytes
        if (budget - slots * largest < 0) {
            throw new IllegalArgumentException("a weight budget of " + budget + " bytes cannot hold " + slots + " prefetch slots of "
                    + largest + " bytes (the largest layer); give the weights at least " + slots * largest + " bytes or use fewer slots");
        }
        long slotBytes = -1, best = Long.MAX_VALUE;
        long[] sizes = java.util.Arrays.stream(bytes).distinct().sorted().toArray();
        for (int k = sizes.length - 1; k >= 0; k--) {
            long slot = sizes[k], left = budget - slots * slot;
            if (left < 0) continue;
            boolean[] candidate = new boolean[n];
            for (int i = 0; i < n; i++) {
                if (bytes[i] > slot) {
                    candidate[i] = true;
                    left -= bytes[i];
                }
            }
            if (left < 0) break;                 // smaller slots force even more residency
            fill(bytes, order, left, candidate);
            long streamed = streamedBytes(bytes, usesPerPass, candidate);
            if (streamed == 0) continue;         // a slot size nothing needs: the next one down is the same split
            if (streamed < best) {
                best = streamed;
                resident = candidate;
                slotBytes = largestStreamed(bytes, candidate);
            }
        }
        long res = 0, streamed = 0;
        for (int i = 0; i < n; i++) {
            if (resident[i]) res += bytes[i];
            else streamed += bytes[i] * usesPerPass[i];
        }
        return new StreamSplit(resident, slots, slotBytes, res, streamed);
    }

    private static void fill(long[] bytes, List<Integer> order, long left, boolean[] resident) {
        for (int i : order) {
            if (!resident[i] && bytes[i] <= left) {
                resident[i] = true;
                left -= bytes[i];
            }
        }
    }

    private static long largestStreamed(long[] bytes, boolean[] resident) {
        long m = 0;
        for (int i = 0; i < bytes.length; i++) if (!resident[i]) m = Math.max(m, bytes[i]);
        return m;
    }

    private static long streamedBytes(long[] bytes, int[] uses, boolean[] resident) {
        long s = 0;
        for (int i = 0; i < bytes.length; i++) if (!resident[i]) s += bytes[i] * uses[i];
        return s;
    }
}
