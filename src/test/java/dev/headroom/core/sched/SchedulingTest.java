package dev.headroom.core.sched;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Properties of the scheduling policy on seeded random queues, device states and arrival streams. */
class SchedulingTest {
    private static final Scheduling.Config C = Scheduling.Config.DEFAULT;
    private static final String[] MODELS = {"a", "b", "c", "d"};

    private static List<Waiting> randomQueue(Random r, long now, int n) {
        List<Waiting> q = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            q.add(new Waiting("j" + i, r.nextInt(7) - 3, now - r.nextInt(600_000), i, MODELS[r.nextInt(MODELS.length)], 1 + r.nextInt(1000)));
        }
        return q;
    }

    @Test
    void neverAdmitsPastHeadroomOrConcurrency() {
        Random r = new Random(1);
        for (int t = 0; t < 5000; t++) {
            long now = 10_000_000;
            List<Waiting> q = randomQueue(r, now, 1 + r.nextInt(60));
            var dev = new Scheduling.DeviceState(r.nextInt(1200), r.nextInt(6), Set.of(MODELS[r.nextInt(4)]));
            Optional<Waiting> got = Scheduling.next(q, now, dev, C);
            got.ifPresent(j -> {
                assertTrue(j.peakBytes() <= dev.headroomBytes(), "admitted " + j.peakBytes() + " into " + dev.headroomBytes());
                assertTrue(dev.running() < C.maxRunning());
            });
            // when it admits nothing while a slot is free, the chosen job really does not fit
            if (got.isEmpty() && dev.running() < C.maxRunning()) {
                assertTrue(Scheduling.choose(q, now, dev.residentModels(), C).peakBytes() > dev.headroomBytes());
            }
        }
    }

    @Test
    void withoutResidentModelsTheHighestEffectivePriorityGoesFirstThenFifo() {
        Random r = new Random(2);
        for (int t = 0; t < 3000; t++) {
            long now = 10_000_000;
            List<Waiting> q = randomQueue(r, now, 1 + r.nextInt(40));
            Waiting pick = Scheduling.choose(q, now, Set.of(), C);
            for (Waiting j : q) {
                double a = Scheduling.effectivePriority(pick, now, C), b = Scheduling.effectivePriority(j, now, C);
                assertTrue(a > b || a == b && pick.seq() <= j.seq(), pick + " chosen before " + j);
            }
        }
    }

    @Test
    void agingRaisesAWaitingJobAboveNewerHigherPriorityOnes() {
        Waiting old = new Waiting("old", 0, 0, 0, "a", 1);
        // two levels at one level a minute: a +2 job that came less than two minutes later still goes first ...
        Waiting soon = new Waiting("soon", 2, 60_000, 1, "a", 1);
        assertEquals("soon", Scheduling.choose(List.of(old, soon), 200_000, Set.of(), C).id());
        // ... and one that came more than two minutes later does not, however long both then wait
        Waiting late = new Waiting("late", 2, 120_001, 1, "a", 1);
        for (long now : new long[] {120_001, 600_000, 6_000_000}) {
            assertEquals("old", Scheduling.choose(List.of(old, late), now, Set.of(), C).id(), "old job not aged past the newcomer at " + now);
        }
    }

    @Test
    void affinityPicksAResidentModelWithinTheLookAheadAndBonusOnly() {
        Random r = new Random(3);
        for (int t = 0; t < 3000; t++) {
            long now = 10_000_000;
            List<Waiting> q = randomQueue(r, now, 1 + r.nextInt(80));
            Set<String> resident = Set.of(MODELS[r.nextInt(4)]);
            Waiting pick = Scheduling.choose(q, now, resident, C);
            List<Waiting> order = Scheduling.order(q, now, C);
            Waiting head = order.getFirst();
            int rank = order.indexOf(pick);
            assertTrue(rank < C.lookAhead(), "looked past " + C.lookAhead() + " jobs: rank " + rank);
            if (pick != head) {
                assertTrue(resident.contains(pick.model()) && !resident.contains(head.model()));
                assertTrue(Scheduling.effectivePriority(pick, now, C) >= Scheduling.effectivePriority(head, now, C) - C.affinityBonus());
                // and it is the best-ranked such job
                for (Waiting j : order.subList(1, rank)) assertTrue(!resident.contains(j.model()));
            } else if (!resident.contains(head.model())) {
                for (Waiting j : order.subList(1, Math.min(C.lookAhead(), order.size()))) {
                    assertTrue(!resident.contains(j.model()) || Scheduling.effectivePriority(j, now, C) < Scheduling.effectivePriority(head, now, C) - C.affinityBonus());
                }
            }
        }
    }

    /**
     * A simulated device under a steady stream of jobs of random size, priority and model, with the
     * model of the last admitted job resident: every job that enters is admitted, within a bounded
     * wait, and the memory in use never passes the budget.
     */
    @Test
    void nothingStarvesUnderASteadyStreamAndMemoryStaysWithinBudget() {
        for (int seed = 0; seed < 20; seed++) {
            Random r = new Random(100 + seed);
            long budget = 1000, used = 0, now = 0, seq = 0;
            List<Waiting> queue = new ArrayList<>();
            Map<String, long[]> running = new HashMap<>();   // id -> {peak, ends at}
            Map<String, Long> admittedAt = new HashMap<>(), enqueuedAt = new HashMap<>();
            Set<String> resident = new HashSet<>();
            long maxWait = 0;
            for (int step = 0; step < 20_000; step++) {
                now += 1000;
                if (step < 15_000 && r.nextInt(3) == 0) {
                    // the stream brings mostly high-priority jobs: low ones must still get through
                    Waiting j = new Waiting("j" + seq, r.nextInt(10) == 0 ? -5 : 3, now, seq++, MODELS[r.nextInt(4)], 50 + r.nextInt(800));
                    queue.add(j);
                    enqueuedAt.put(j.id(), now);
                }
                final long t = now;
                running.entrySet().removeIf(e -> e.getValue()[1] <= t);
                used = running.values().stream().mapToLong(v -> v[0]).sum();
                for (Optional<Waiting> next; (next = Scheduling.next(queue, now, new Scheduling.DeviceState(budget - used, running.size(), resident), C)).isPresent(); ) {
                    Waiting j = next.get();
                    queue.remove(j);
                    used += j.peakBytes();
                    assertTrue(used <= budget, "over budget: " + used);
                    running.put(j.id(), new long[] {j.peakBytes(), now + 1000L * (1 + r.nextInt(5))});
                    admittedAt.put(j.id(), now);
                    maxWait = Math.max(maxWait, now - j.enqueued());
                    resident.clear();
                    resident.add(j.model());
                }
            }
            assertTrue(queue.isEmpty(), "jobs never admitted: " + queue.size());
            assertEquals(enqueuedAt.keySet(), admittedAt.keySet());
            // -5 against +3 is 8 levels at one a minute, plus the affinity bonus: ten minutes bound every wait
            assertTrue(maxWait <= 10 * 60_000, "a job waited " + maxWait / 1000 + " s");
        }
    }
}
