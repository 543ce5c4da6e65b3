package dev.headroom.core.residency;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.headroom.core.residency.SlotSchedule.Load;
import dev.headroom.core.residency.SlotSchedule.Step;
import dev.headroom.core.residency.SlotSchedule.Use;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The streaming schedule on a fake device: two simulated streams (copy and compute) with events,
 * random durations, and slots whose contents are tracked, so a use that reads a slot before its
 * copy finished, or while a later copy overwrites it, is caught.
 */
class SlotScheduleTest {

    /**
     * Carries steps out as a CUDA backend does (copy stream: wait freed[slot], copy, record
     * loaded[slot]; compute stream: wait loaded[slot], run, record freed[slot]) on simulated
     * clocks, and records every copy's and use's interval per slot.
     */
    static final class FakeStreams {
        double copyClock, computeClock, computeBusy;
        final double[] loaded, freed;
        final List<List<double[]>> writes = new ArrayList<>();   // per slot: {start, end, layer}
        final List<double[]> reads = new ArrayList<>();          // {slot, start, end, layer}

        FakeStreams(int slots) {
            loaded = new double[slots];
            freed = new double[slots];
            for (int s = 0; s < slots; s++) writes.add(new ArrayList<>());
        }

        void run(List<Step> steps, double[] copyTime, double[] computeTime) {
            for (Step st : steps) {
                switch (st) {
                    case Load l -> {
                        double start = Math.max(copyClock, freed[l.slot()]);
                        double end = start + copyTime[l.layer()];
                        writes.get(l.slot()).add(new double[] {start, end, l.layer()});
                        loaded[l.slot()] = end;
                        copyClock = end;
                    }
                    case Use u -> {
                        double start = u.resident() ? computeClock : Math.max(computeClock, loaded[u.slot()]);
                        double end = start + computeTime[u.layer()];
                        if (!u.resident()) {
                            reads.add(new double[] {u.slot(), start, end, u.layer()});
                            freed[u.slot()] = end;
                        }
                        computeBusy += computeTime[u.layer()];
                        computeClock = end;
                    }
                }
            }
        }

        /** Every use read its own layer, copied completely before it started, and no copy overlapped it. */
        void check() {
            for (double[] r : reads) {
                int slot = (int) r[0];
                double start = r[1], end = r[2];
                double[] last = null;
                for (double[] w : writes.get(slot)) {
                    if (w[0] < end && w[1] > start) fail("slot " + slot + " overwritten by layer " + (int) w[2] + " while layer " + (int) r[3] + " ran from it");
                    if (w[1] <= start && (last == null || w[1] > last[1])) last = w;
                }
                if (last == null || (int) last[2] != (int) r[3]) {
                    fail("layer " + (int) r[3] + " ran from slot " + slot + " holding " + (last == null ? "nothing" : "layer " + (int) last[2]));
                }
            }
        }
    }

    @Test
    void randomPassesNeverReadASlotBeforeItsCopyOrWhileItIsOverwritten() {
        Random r = new Random(15);
        for (int trial = 0; trial < 300; trial++) {
            int layers = 1 + r.nextInt(12), slots = 1 + r.nextInt(4);
            boolean[] streamed = new boolean[layers];
            for (int i = 0; i < layers; i++) streamed[i] = r.nextInt(3) > 0;
            SlotSchedule schedule = new SlotSchedule(streamed, slots);
            double[] copy = new double[layers], compute = new double[layers];
            for (int i = 0; i < layers; i++) {
                copy[i] = 0.1 + r.nextDouble() * 3;
                compute[i] = 0.1 + r.nextDouble() * 3;
            }
            FakeStreams dev = new FakeStreams(slots);
            int[] sequence = sequence(r, layers);
            for (int pass = 0; pass < 5; pass++) {
                if (r.nextInt(4) == 0) sequence = sequence(r, layers);   // another tile shape
                List<Step> steps = schedule.pass(sequence);
                List<Integer> used = new ArrayList<>();
                for (Step s : steps) {
                    if (s instanceof Use u) {
                        used.add(u.layer());
                        assertEquals(!streamed[u.layer()], u.resident(), "layer " + u.layer() + " resident or not as split");
                    }
                    if (s instanceof Load l) assertTrue(streamed[l.layer()], "only streamed layers are copied");
                }
                assertEquals(java.util.Arrays.stream(sequence).boxed().toList(), used, "uses follow the walk order");
                dev.run(steps, copy, compute);
            }
            dev.check();
            assertTrue(schedule.loads() <= schedule.streamedUses() + slots, "at most one copy per streamed use (and the last preloads)");
        }
    }

    @Test
    void copiesAsFastAsComputeAreHiddenAfterTheFirstPass() {
        Random r = new Random(7);
        for (int trial = 0; trial < 100; trial++) {
            int layers = 2 + r.nextInt(20);
            boolean[] streamed = new boolean[layers];
            java.util.Arrays.fill(streamed, true);
            double[] copy = new double[layers], compute = new double[layers];
            double u = 1 + r.nextDouble();
            for (int i = 0; i < layers; i++) {
                compute[i] = u;
                copy[i] = u * r.nextDouble();   // no copy longer than a layer's compute
            }
            SlotSchedule schedule = new SlotSchedule(streamed, 2);
            FakeStreams dev = new FakeStreams(2);
            int[] seq = java.util.stream.IntStream.range(0, layers).toArray();
            dev.run(schedule.pass(seq), copy, compute);
            double before = dev.computeClock;
            dev.run(schedule.pass(seq), copy, compute);
            assertEquals(layers * u, dev.computeClock - before, 1e-9, "the second pass never waits for a copy");
            dev.check();
        }
    }

    @Test
    void repeatedPassesCopyEachStreamedLayerOncePerPass() {
        boolean[] streamed = {false, true, true, false, true, true, true};
        SlotSchedule schedule = new SlotSchedule(streamed, 3);
        int[] seq = {0, 1, 2, 3, 4, 5, 6};
        for (int p = 0; p < 4; p++) schedule.pass(seq);
        assertEquals(4 * 5, schedule.streamedUses());
        assertEquals(4 * 5 + 3, schedule.loads(), "five streamed layers, three slots: one copy per use, and three preloaded for a fifth pass");
    }

    @Test
    void aLayerRepeatedBackToBackStaysInItsSlot() {
        boolean[] streamed = {true, true};
        SlotSchedule schedule = new SlotSchedule(streamed, 1);
        List<Step> steps = schedule.pass(new int[] {0, 1, 1, 1, 0});
        long loads = steps.stream().filter(s -> s instanceof Load).count();
        assertEquals(3, loads, "0, 1 (kept for its three uses), 0, and the next pass's 0 is already there: " + steps);
    }

    @Test
    void everythingResidentNeedsNoSlots() {
        SlotSchedule schedule = new SlotSchedule(new boolean[3], 0);
        List<Step> steps = schedule.pass(new int[] {0, 1, 2});
        assertEquals(List.of(new Use(0, -1), new Use(1, -1), new Use(2, -1)), steps);
    }

    private static int[] sequence(Random r, int layers) {
        List<Integer> seq = new ArrayList<>();
        for (int i = 0; i < layers; i++) seq.add(i);
        int tail = r.nextInt(layers);                        // a banded tail: its layers once per band
        for (int band = 1; band < 1 + r.nextInt(3); band++) for (int i = tail; i < layers; i++) seq.add(i);
        return seq.stream().mapToInt(Integer::intValue).toArray();
    }
}
