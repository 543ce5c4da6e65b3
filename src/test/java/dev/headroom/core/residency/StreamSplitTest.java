package dev.headroom.core.residency;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

class StreamSplitTest {

    @Test
    void randomSplitsStayInTheirBudgetAndEveryStreamedLayerFitsASlot() {
        Random r = new Random(3);
        for (int trial = 0; trial < 2000; trial++) {
            int n = 1 + r.nextInt(30), slots = 1 + r.nextInt(3);
            long[] bytes = new long[n];
            int[] uses = new int[n];
            long total = 0, largest = 0;
            for (int i = 0; i < n; i++) {
                bytes[i] = 1 + r.nextInt(1000);
                uses[i] = r.nextInt(5) == 0 ? 2 : 1;
                total += bytes[i];
                largest = Math.max(largest, bytes[i]);
            }
            long budget = slots * largest + (long) (r.nextDouble() * total);
            StreamSplit s = StreamSplit.choose(bytes, uses, budget, slots);
            assertTrue(s.deviceBytes() <= budget, "device bytes " + s.deviceBytes() + " within budget " + budget);
            long res = 0, streamed = 0;
            for (int i = 0; i < n; i++) {
                if (s.resident()[i]) res += bytes[i];
                else {
                    assertTrue(bytes[i] <= s.slotBytes(), "streamed layer of " + bytes[i] + " fits a slot of " + s.slotBytes());
                    streamed += bytes[i] * uses[i];
                }
            }
            assertEquals(res, s.residentBytes());
            assertEquals(streamed, s.streamedBytes());
            if (total <= budget) {
                assertEquals(0, s.slots());
                assertEquals(0, s.streamedCount());
            } else {
                assertEquals(slots, s.slots());
                assertTrue(s.streamedCount() > 0);
            }
        }
    }

    @Test
    void layersUsedSeveralTimesAPassAreKeptFirstThenTheEarliest() {
        long[] bytes = {10, 10, 10, 10, 10, 10};
        int[] uses = {1, 1, 1, 1, 3, 3};
        StreamSplit s = StreamSplit.choose(bytes, uses, 10 + 2 * 10 + 10, 1);   // one slot, three resident
        assertArrayEquals(new boolean[] {true, false, false, false, true, true}, s.resident());
        assertEquals(30, s.streamedBytes());
        assertEquals(10, s.slotBytes());
    }

    @Test
    void slotsShrinkToTheLargestStreamedLayer() {
        long[] bytes = {100, 10, 10, 10, 10, 10};
        StreamSplit s = StreamSplit.choose(bytes, new int[] {1, 1, 1, 1, 1, 1}, 115, 1);
        // a slot of 100 leaves 15: one small layer resident, 140 bytes streamed; keeping the large
        // layer and streaming the small ones through a slot of 10 streams 50
        assertArrayEquals(new boolean[] {true, false, false, false, false, false}, s.resident());
        assertEquals(10, s.slotBytes());
        assertEquals(50, s.streamedBytes());
        assertEquals(110, s.deviceBytes());
    }

    @Test
    void aBudgetBelowTheSlotsSaysWhatItNeeds() {
        var e = assertThrows(IllegalArgumentException.class, () -> StreamSplit.choose(new long[] {50, 80}, new int[] {1, 1}, 100, 2));
        assertTrue(e.getMessage().contains("160"), e.getMessage());
    }

    /**
     * The planner's properties over random models, rates and budget sweeps, with the slot count
     * given and chosen: never over the budget; every streamed layer fits a slot; everything
     * resident (no slots) when it fits; more budget never streams more bytes a pass, and is never
     * refused where less was accepted; the chosen slot count does not depend on the budget.
     */
    @Test
    void morebudgetNeverStreamsMoreBytesAndNothingGoesOverTheBudget() {
        Random r = new Random(11);
        for (int trial = 0; trial < 400; trial++) {
            int n = 1 + r.nextInt(40), slots = r.nextInt(4);   // 0: the cost model chooses
            long[] bytes = new long[n], macs = new long[n];
            int[] uses = new int[n];
            long total = 0;
            for (int i = 0; i < n; i++) {
                bytes[i] = 1 + r.nextInt(r.nextBoolean() ? 50 : 1000);
                macs[i] = r.nextInt(5) == 0 ? 0 : (long) (bytes[i] * r.nextDouble() * 4000);
                uses[i] = r.nextInt(6) == 0 ? 1 + r.nextInt(3) : 1;
                total += bytes[i];
            }
            StreamSplit.Cost cost = r.nextInt(4) == 0 ? StreamSplit.Cost.NONE : new StreamSplit.Cost(1 + r.nextDouble() * 50, 100 + r.nextDouble() * 100_000);
            long lastStreamed = Long.MAX_VALUE;
            int chosenSlots = -1;
            boolean accepted = false;
            for (long budget = 0; budget <= total + 1000; budget += 1 + r.nextInt(Math.max(1, (int) (total / 25)))) {
                StreamSplit s;
                try {
                    s = StreamSplit.plan(bytes, uses, macs, budget, slots, cost);
                } catch (IllegalArgumentException e) {
                    assertTrue(!accepted, "trial " + trial + ": budget " + budget + " refused after a smaller one was accepted: " + e.getMessage());
                    continue;
                }
                accepted = true;
                String what = "trial " + trial + " budget " + budget + " of " + total + ": " + s;
                assertTrue(s.deviceBytes() <= budget, what + " over budget");
                assertTrue(s.streamedBytes() <= lastStreamed, what + " streams " + s.streamedBytes() + " > " + lastStreamed + " with less budget");
                lastStreamed = s.streamedBytes();
                long res = 0, streamed = 0;
                for (int i = 0; i < n; i++) {
                    if (s.resident()[i]) res += bytes[i];
                    else {
                        assertTrue(bytes[i] <= s.slotBytes(), what + ": layer of " + bytes[i] + " bytes does not fit a slot");
                        streamed += bytes[i] * uses[i];
                    }
                }
                assertEquals(res, s.residentBytes(), what);
                assertEquals(streamed, s.streamedBytes(), what);
                if (total <= budget) {
                    assertEquals(0, s.slots(), what);
                    assertEquals(0, s.streamedCount(), what);
                    assertEquals(0, s.streamedBytes(), what);
                } else {
                    assertTrue(s.streamedCount() > 0, what);
                    if (slots > 0) assertEquals(slots, s.slots(), what);
                    else {
                        assertTrue(s.slots() >= 2 && s.slots() <= StreamSplit.MAX_SLOTS, what);
                        if (chosenSlots < 0) chosenSlots = s.slots();
                        assertEquals(chosenSlots, s.slots(), what + ": the chosen slot count changed with the budget");
                    }
                }
            }
            assertTrue(accepted, "trial " + trial + ": a budget of the whole model is always accepted");
        }
    }

    /**
     * Equal layers, but layer 4 follows layer 3, which computes almost nothing, so its copy cannot
     * hide: with room for one resident layer beside the slots, the cost model keeps layer 4, where
     * walk order would keep layer 0, and the modelled pass is faster for it.
     */
    @Test
    void theLayerWhoseCopyWouldNotHideIsKeptResident() {
        long[] bytes = {100, 100, 100, 100, 100, 100};
        long[] macs = {1000, 1000, 1000, 10, 1000, 1000};
        int[] uses = {1, 1, 1, 1, 1, 1};
        StreamSplit.Cost cost = new StreamSplit.Cost(0.1, 1);   // a copy takes 1000 ns, a layer computes for up to 1000
        long budget = 2 * 100 + 100;
        StreamSplit planned = StreamSplit.plan(bytes, uses, macs, budget, 2, cost);
        StreamSplit walk = StreamSplit.choose(bytes, uses, budget, 2);
        assertTrue(planned.resident()[4], "layer 4 follows the layer that computes for 10 ns: " + java.util.Arrays.toString(planned.resident()));
        assertTrue(walk.resident()[0]);
        assertEquals(walk.streamedBytes(), planned.streamedBytes(), "the same bytes streamed, other layers");
        double p = planned.passNanos(bytes, macs, cost), w = walk.passNanos(bytes, macs, cost);
        assertTrue(p < w, "modelled pass " + p + " ns with the cost model's choice, " + w + " ns in walk order");
    }

    @Test
    void theSlotCountIsTheFewestThatHidesTheCopies() {
        long[] bytes = {100, 100, 100, 100};
        int[] uses = {1, 1, 1, 1};
        long[] macs = {1000, 1000, 1000, 1000};
        // a copy of 100 bytes at 0.2 B/ns takes 500 ns: one layer's 1000 ns hides it
        assertEquals(2, StreamSplit.plan(bytes, uses, macs, 250, 0, new StreamSplit.Cost(0.2, 1)).slots());
        // 1500 ns: two layers' compute is needed
        assertEquals(3, StreamSplit.plan(bytes, uses, macs, 350, 0, new StreamSplit.Cost(100.0 / 1500, 1)).slots());
        // 5000 ns: nothing hides it, the pass is bound by the bus
        long[] five = {100, 100, 100, 100, 100};
        assertEquals(StreamSplit.MAX_SLOTS, StreamSplit.plan(five, new int[] {1, 1, 1, 1, 1}, new long[] {1000, 1000, 1000, 1000, 1000}, 450, 0, new StreamSplit.Cost(0.02, 1)).slots());
        // fits: no slots
        assertEquals(0, StreamSplit.plan(bytes, uses, macs, 400, 0, new StreamSplit.Cost(0.02, 1)).slots());
    }

    @Test
    void aModelledPassIsItsComputeWhenCopiesHideAndLongerWhenTheyDoNot() {
        long[] bytes = {100, 100, 100, 100};
        int[] uses = {1, 1, 1, 1};
        long[] macs = {1000, 1000, 1000, 1000};
        StreamSplit.Cost hidden = new StreamSplit.Cost(1, 1), slow = new StreamSplit.Cost(0.01, 1);
        StreamSplit s = StreamSplit.plan(bytes, uses, macs, 250, 2, hidden);
        assertEquals(4000, s.passNanos(bytes, macs, hidden), 1e-6);
        assertTrue(s.passNanos(bytes, macs, slow) > 4000 + 10_000, "copies of 10,000 ns each do not hide");
    }
}
