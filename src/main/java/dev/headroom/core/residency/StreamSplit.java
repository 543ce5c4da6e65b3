package dev.headroom.core.residency;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Which layers of a model stay on the device and which are streamed, and through how many
 * prefetch slots, when its weights do not fit the budget given them (weight streaming, partial
 * residency). Pure: sizes, compute and rates in, decision out. The planner lives in {@link #plan}.
 *
 * <h2>The cost model</h2>
 * Every forward pass walks the layers in the same order, so a fixed resident set is right and LRU
 * is wrong (LRU would evict exactly the layer needed next). A streamed layer {@code i} costs a copy
 * of {@code t(i) = bytes(i) / copyRate} on the copy stream each time a pass uses it; the copy runs
 * while earlier layers compute ({@code c(j) = macs(j) / macRate}, for the planned tile). With
 * {@code k} slots, the copy into a slot may start once the layer {@code k} streamed uses earlier is
 * done with it, so when everything streams it overlaps the compute of the {@code k - 1} layers
 * before it; with at least two slots it overlaps at least the layer just before it. Hence:
 * <ul>
 * <li><b>Slots</b> ({@link #slotsToHide}): the fewest {@code k} (2 to {@link #MAX_SLOTS}) for
 *     which, were every layer streamed, the copies that do not fit within the compute of the
 *     {@code k - 1} layers before them add at most 5% to the pass; {@link #MAX_SLOTS} when none
 *     does (the pass is then bound by the bus: more slots would only hold more bytes). The count
 *     depends on the model and the tile, not on the budget, which is what keeps the bytes
 *     streamed monotone in the budget (below).</li>
 * <li><b>Resident set</b>: a layer's <i>exposure</i> is the copy time that would not hide behind
 *     the layer before it, {@code uses(i) * max(0, t(i) - c(i-1))} (the layer before the first is
 *     the last: the next pass's first copies run while the last layers compute). Layers are kept
 *     resident in order of exposure per byte (highest first; then layers used more than once a
 *     pass, e.g. a banded tail; then walk order), the longest prefix of that order that fits. Layers
 *     whose copies hide entirely come last: they are the ones streamed.</li>
 * <li><b>Slot size</b>: each slot is as large as the largest streamed layer, so every layer larger
 *     than the slots must be resident: each distinct layer size is tried as the slot size and the
 *     candidate that streams the fewest bytes per pass is kept.</li>
 * </ul>
 * Properties (tested in StreamSplitTest over random models): the split never holds more than the
 * budget; everything is resident, with no slots, when it fits; and more budget never streams more
 * bytes: for a fixed slot count and slot size the resident set is a prefix of a fixed order, so it
 * only grows with the budget, and the best over slot sizes only improves as more become
 * affordable. A budget too small for the slots (and the layers larger than them) is refused, with
 * the bytes needed; that threshold is fixed, so a larger budget is never refused where a smaller
 * one was not. Without rates ({@link Cost#NONE}) every copy counts as exposed and the order is
 * layers used more than once first, then walk order.
 *
 * @param resident     per layer (walk order): kept on the device
 * @param slots        prefetch slots (0 when nothing is streamed)
 * @param slotBytes    bytes of each slot: the largest streamed layer
 * @param residentBytes bytes of the resident layers
 * @param streamedBytes bytes copied per pass (each streamed use once)
 */
public record StreamSplit(boolean[] resident, int slots, long slotBytes, long residentBytes, long streamedBytes) {

    /** The most prefetch slots the planner gives a model (more would only hold bytes a bus-bound pass cannot use). */
    public static final int MAX_SLOTS = 4;

    /**
     * The rates of the cost model: bytes a copy moves per nanosecond (host to device, pinned) and
     * multiply-adds a convolution does per nanosecond.
     */
    public record Cost(double copyBytesPerNano, double macsPerNano) {
        /** No rates known: every copy is exposed. */
        public static final Cost NONE = new Cost(1, Double.POSITIVE_INFINITY);

        /**
         * An H200: pinned host-to-device copies at 50 bytes/ns (d15 measured 54.5 GB/s for one
         * plain pinned copy); convolutions at the rate e15's stream benchmark ran the wide
         * RRDBNet at, 7.51e13 multiply-adds (fp16, a 512 tile) in 260.96 ms: 288,000 a ns.
         * Measured in fp16 only and used for every precision: an fp32 pass is slower, so it only
         * hides its copies better than this predicts.
         */
        public static final Cost H200 = new Cost(50, 288_000);

        /**
         * The CPU backend, measured with scripts/bench/StreamRates.java on the development machine
         * (2 shared cores, synthetic rrdbnet-x4 at a 64 tile): 7.34e10 multiply-adds in 862 ms
         * (85 a ns); 64.0 MB of slots prepared a pass in 158 ms more (0.41 bytes a ns). The CPU's
         * "copy" runs on the thread that computes, so it does not truly overlap; the planner's
         * order still keeps resident the layers with the least compute before them.
         */
        public static final Cost CPU = new Cost(0.41, 85);

        public Cost {
            if (!(copyBytesPerNano > 0) || !(macsPerNano > 0)) throw new IllegalArgumentException("stream cost rates must be positive: " + copyBytesPerNano + " B/ns, " + macsPerNano + " MAC/ns");
        }

        double copyNanos(long bytes) {
            return bytes / copyBytesPerNano;
        }

        double computeNanos(long macs) {
            return Double.isInfinite(macsPerNano) ? 0 : macs / macsPerNano;
        }
    }

    /** Device bytes the split holds: resident layers and the slots. */
    public long deviceBytes() {
        return residentBytes + slots * slotBytes;
    }

    public int streamedCount() {
        int n = 0;
        for (boolean r : resident) if (!r) n++;
        return n;
    }

    /** As {@link #plan} without rates ({@link Cost#NONE}) and with {@code slots} slots. */
    public static StreamSplit choose(long[] bytes, int[] usesPerPass, long budget, int slots) {
        if (slots < 1) throw new IllegalArgumentException("weight streaming needs at least 1 prefetch slot, got " + slots);
        return plan(bytes, usesPerPass, new long[bytes.length], budget, slots, Cost.NONE);
    }

    /**
     * The split for {@code budget} (see the class comment for the cost model).
     *
     * @param bytes        each layer's device bytes, in walk order
     * @param usesPerPass  how many times a pass uses each layer (1 unless a banded tail repeats it)
     * @param macs         each layer's multiply-adds per use for the planned tile (0 where unknown)
     * @param budget       bytes the model's weights may hold on the device, slots included
     * @param slots        prefetch slots when something must be streamed; 0 lets the cost model choose
     * @param cost         the copy and compute rates
     * @throws IllegalArgumentException when the budget cannot hold the slots and the layers larger than them
     */
    public static StreamSplit plan(long[] bytes, int[] usesPerPass, long[] macs, long budget, int slots, Cost cost) {
        int n = bytes.length;
        if (slots < 0) throw new IllegalArgumentException("weight streaming needs at least 1 prefetch slot, got " + slots);
        if (usesPerPass.length != n || macs.length != n) {
            throw new IllegalArgumentException(n + " layer sizes but " + usesPerPass.length + " use counts and " + macs.length + " compute counts");
        }
        long total = 0;
        for (int i = 0; i < n; i++) {
            if (bytes[i] < 0 || usesPerPass[i] < 1 || macs[i] < 0) {
                throw new IllegalArgumentException("layer " + i + ": " + bytes[i] + " bytes, " + usesPerPass[i] + " uses a pass, " + macs[i] + " multiply-adds");
            }
            total += bytes[i];
        }
        boolean[] resident = new boolean[n];
        if (total <= budget) {
            java.util.Arrays.fill(resident, true);
            return new StreamSplit(resident, 0, 0, total, 0);
        }
        double[] copy = new double[n], compute = new double[n];
        for (int i = 0; i < n; i++) {
            copy[i] = cost.copyNanos(bytes[i]);
            compute[i] = cost.computeNanos(macs[i]);
        }
        int k = slots > 0 ? slots : slotsToHide(copy, compute);
        List<Integer> order = residencyOrder(bytes, usesPerPass, copy, compute);
        long slotBytes = -1, best = Long.MAX_VALUE, needed = Long.MAX_VALUE;
        long[] sizes = java.util.Arrays.stream(bytes).distinct().sorted().toArray();
        for (int j = sizes.length - 1; j >= 0; j--) {
            long slot = sizes[j], left = budget - k * slot, forced = 0;
            boolean[] candidate = new boolean[n];
            for (int i = 0; i < n; i++) {
                if (bytes[i] > slot) {
                    candidate[i] = true;
                    forced += bytes[i];
                }
            }
            needed = Math.min(needed, forced + k * slot);
            left -= forced;
            if (left < 0) continue;
            fillPrefix(bytes, order, left, candidate);
            long streamed = streamedBytes(bytes, usesPerPass, candidate);
            if (streamed == 0) continue;         // a slot size nothing needs: a smaller one gives the same split
            if (streamed < best) {
                best = streamed;
                resident = candidate;
                slotBytes = largestStreamed(bytes, candidate);
            }
        }
        if (slotBytes < 0) {
            throw new IllegalArgumentException("a weight budget of " + budget + " bytes cannot hold " + k + " prefetch slots and the layers larger than them;"
                    + " give the weights at least " + needed + " bytes (" + k + " slots of " + bytes[argMax(bytes)] + " bytes, the largest layer, need "
                    + k * bytes[argMax(bytes)] + ")" + (slots > 0 ? " or use fewer slots" : ""));
        }
        long res = 0;
        for (int i = 0; i < n; i++) if (resident[i]) res += bytes[i];
        return new StreamSplit(resident, k, slotBytes, res, best);
    }

    /** The share of a pass's compute that copies which do not hide may add before the planner gives another slot. */
    static final double EXPOSED_SHARE = 0.05;

    /**
     * The fewest slots (2 to {@link #MAX_SLOTS}) with which, were every layer streamed, the copies
     * that do not fit within the compute of the layers before them they overlap (k - 1 of them,
     * cyclically: a pass's first copies overlap the previous pass's last layers) add at most
     * {@link #EXPOSED_SHARE} to the pass; {@link #MAX_SLOTS} if none does (the pass is bound by the
     * bus). A share rather than every copy: one thin layer (the image-reading first convolution)
     * would otherwise decide the slots for all, and the planner keeps such a layer's successor
     * resident first anyway.
     */
    static int slotsToHide(double[] copy, double[] compute) {
        int n = copy.length;
        double pass = 0;
        for (double c : compute) pass += c;
        for (int k = 2; k < MAX_SLOTS; k++) {
            double exposed = 0;
            for (int i = 0; i < n; i++) {
                double window = 0;
                for (int j = 1; j < k; j++) window += compute[((i - j) % n + n) % n];
                exposed += Math.max(0, copy[i] - window);
            }
            if (exposed <= EXPOSED_SHARE * pass) return k;
        }
        return MAX_SLOTS;
    }

    /** Layers by exposure per byte (highest first), then used more than once a pass, then walk order. */
    private static List<Integer> residencyOrder(long[] bytes, int[] uses, double[] copy, double[] compute) {
        int n = bytes.length;
        double[] density = new double[n];
        for (int i = 0; i < n; i++) {
            double exposed = uses[i] * Math.max(0, copy[i] - compute[((i - 1) % n + n) % n]);
            density[i] = bytes[i] == 0 ? Double.POSITIVE_INFINITY : exposed / bytes[i];
        }
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < n; i++) order.add(i);
        order.sort(Comparator.comparingDouble((Integer i) -> -density[i]).thenComparingInt(i -> uses[i] > 1 ? 0 : 1).thenComparingInt(i -> i));
        return order;
    }

    /** Keeps resident, in {@code order}, every layer up to the first that does not fit {@code left} (a prefix: more budget only adds layers). */
    private static void fillPrefix(long[] bytes, List<Integer> order, long left, boolean[] resident) {
        for (int i : order) {
            if (resident[i]) continue;
            if (bytes[i] > left) return;
            resident[i] = true;
            left -= bytes[i];
        }
    }

    private static int argMax(long[] a) {
        int m = 0;
        for (int i = 1; i < a.length; i++) if (a[i] > a[m]) m = i;
        return m;
    }

    /**
     * The time of one pass in the steady state under this split by the cost model, each layer used
     * once in walk order ({@code bytes} and {@code macs} as given to {@link #plan}): the compute of
     * every layer plus what streamed layers wait for their copies. Simulates the two streams on
     * {@link SlotSchedule}'s steps (a copy waits for its slot's last use and for the copy before
     * it; a use waits for the layer before it and for its copy); the second of two passes is
     * timed, so the next pass's preloads count. For reports and tests.
     */
    public double passNanos(long[] bytes, long[] macs, Cost cost) {
        int n = resident.length;
        boolean[] streamed = new boolean[n];
        int[] sequence = new int[n];
        for (int i = 0; i < n; i++) {
            streamed[i] = !resident[i];
            sequence[i] = i;
        }
        SlotSchedule schedule = new SlotSchedule(streamed, Math.max(1, slots));
        double copyClock = 0, computeClock = 0, start = 0;
        double[] loaded = new double[Math.max(1, slots)], freed = new double[Math.max(1, slots)];
        for (int pass = 0; pass < 2; pass++) {
            start = computeClock;
            for (SlotSchedule.Step step : schedule.pass(sequence)) {
                switch (step) {
                    case SlotSchedule.Load l -> {
                        copyClock = Math.max(copyClock, freed[l.slot()]) + cost.copyNanos(bytes[l.layer()]);
                        loaded[l.slot()] = copyClock;
                    }
                    case SlotSchedule.Use u -> {
                        double at = u.resident() ? computeClock : Math.max(computeClock, loaded[u.slot()]);
                        computeClock = at + cost.computeNanos(macs[u.layer()]);
                        if (!u.resident()) freed[u.slot()] = computeClock;
                    }
                }
            }
        }
        return computeClock - start;
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
