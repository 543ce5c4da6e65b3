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
}
