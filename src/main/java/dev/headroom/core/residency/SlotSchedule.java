package dev.headroom.core.residency;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The order of copies and uses for weight streaming through a fixed number of prefetch slots,
 * as pure bookkeeping: a backend carries each {@link Step} out with its native calls (CUDA: copies
 * on a copy stream, events between the two streams), the CPU or a test device trivially. Nothing
 * here waits; the waits are implied by the steps, and they are the whole contract:
 * <ul>
 * <li>{@link Load}{@code (layer, slot)}: on the copy stream, wait until the compute stream has
 *     finished the slot's last {@link Use} (event "freed[slot]"), copy the layer's host weights
 *     into the slot, then mark "loaded[slot]";
 * <li>{@link Use}{@code (layer, slot)}: on the compute stream, wait for "loaded[slot]", run the
 *     layer from the slot, then mark "freed[slot]"; a resident layer's use (slot -1) waits for
 *     nothing.
 * </ul>
 * The compute stream waits only for copies, never for the host, and the host waits for neither.
 *
 * <p>Algorithm: a pass is a sequence of layer uses (the same layer may repeat, e.g. once per band
 * of a banded tail). Streamed uses are given slots in order of use: whenever a slot is free (its
 * use issued), it takes the next streamed use not yet given one: a free slot already holding that
 * layer is taken without a copy, otherwise the free slot whose layer is needed last (or never) is
 * overwritten. When every use of this pass has a slot, freed slots are filled with the first
 * streamed layers of the next pass, assuming it walks the same sequence (passes of one model at
 * one tile shape do), so the copies for the next pass overlap this pass's last layers. What the
 * slots hold is kept between passes; a pass with another sequence simply finds different layers
 * there and loads what it needs.
 *
 * <p>Not thread-safe: one session runs one pass at a time.
 */
public final class SlotSchedule {
    /** One step of a pass, in issue order. */
    public sealed interface Step permits Load, Use {}

    /** Copy {@code layer} into {@code slot} once the slot's last use is done. */
    public record Load(int layer, int slot) implements Step {}

    /** Run {@code layer}: from {@code slot} once its load is done, or resident ({@code slot} -1). */
    public record Use(int layer, int slot) implements Step {
        public boolean resident() {
            return slot < 0;
        }
    }

    private final boolean[] streamed;
    /** The layer each slot holds or is loading, or -1. */
    private final int[] content;
    /** Uses and loads issued so far, over all passes, for reports. */
    private long loads, uses;

    /**
     * @param streamed per layer id: whether it is streamed (not resident)
     * @param slots    the number of prefetch slots (at least 1 if anything is streamed)
     */
    public SlotSchedule(boolean[] streamed, int slots) {
        boolean any = false;
        for (boolean s : streamed) any |= s;
        if (any && slots < 1) throw new IllegalArgumentException("streamed layers need at least 1 prefetch slot");
        this.streamed = streamed.clone();
        this.content = new int[slots];
        Arrays.fill(content, -1);
    }

    public int slots() {
        return content.length;
    }

    public boolean streamed(int layer) {
        return streamed[layer];
    }

    /** Copies issued so far (each a layer's streamed bytes over the bus). */
    public long loads() {
        return loads;
    }

    /** Streamed uses issued so far. */
    public long streamedUses() {
        return uses;
    }

    /** What each slot holds now (a copy), for tests and reports. */
    public int[] contents() {
        return content.clone();
    }

    /**
     * The steps of one pass that uses layers in {@code sequence} order: every layer's {@link Use}
     * in that order, with {@link Load}s placed as early as a free slot allows, ending with the loads
     * for the next pass's first streamed layers.
     */
    public List<Step> pass(int[] sequence) {
        int[] want = Arrays.stream(sequence).filter(l -> streamed[l]).toArray();   // streamed uses in order
        int n = want.length, slots = content.length;
        List<Step> steps = new ArrayList<>(sequence.length + 2 * n + slots);
        int[] owner = new int[slots];           // the use index a slot is assigned to, or -1 (free)
        Arrays.fill(owner, -1);
        int[] slotOf = new int[n];
        int next = 0;                           // next use (of this pass, then the next pass's) without a slot
        next = assign(want, next, owner, slotOf, steps);
        int u = 0;
        for (int layer : sequence) {
            if (!streamed[layer]) {
                steps.add(new Use(layer, -1));
                continue;
            }
            int s = slotOf[u];
            steps.add(new Use(layer, s));
            uses++;
            owner[s] = -1;
            u++;
            next = assign(want, next, owner, slotOf, steps);
        }
        return steps;
    }

    /** Gives free slots to the uses from {@code next} on, emitting loads; returns the new {@code next}. */
    private int assign(int[] want, int next, int[] owner, int[] slotOf, List<Step> steps) {
        int n = want.length;
        // at most one pass ahead: the next pass's first uses, up to the number of slots
        while (n > 0 && next < n + Math.min(n, content.length)) {
            int layer = want[next % n];
            int s = -1;
            for (int k = 0; k < content.length && s < 0; k++) if (owner[k] < 0 && content[k] == layer) s = k;
            if (s < 0) s = victim(want, next, owner);
            if (s < 0) break;                    // no free slot: wait for a use to free one
            if (content[s] != layer) {
                steps.add(new Load(layer, s));
                loads++;
                content[s] = layer;
            }
            if (next < n) {
                owner[s] = next;
                slotOf[next] = s;
            } else {
                owner[s] = Integer.MAX_VALUE;    // held for the next pass; free again when it starts
            }
            next++;
        }
        return next;
    }

    /** The free slot whose layer is needed last after use {@code from} (or never), or -1 when none is free. */
    private int victim(int[] want, int from, int[] owner) {
        int best = -1, bestDistance = -1, n = want.length;
        for (int k = 0; k < content.length; k++) {
            if (owner[k] >= 0) continue;
            int d = Integer.MAX_VALUE;
            if (content[k] >= 0) {
                for (int j = from; j < from + n; j++) {
                    if (want[j % n] == content[k]) {
                        d = j - from;
                        break;
                    }
                }
            }
            if (d > bestDistance) {
                best = k;
                bestDistance = d;
            }
        }
        return best;
    }
}
