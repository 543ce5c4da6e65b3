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

    /**
     * Warm shapes (a kept session has the job's plans) bend the order only within the model that
     * the policy would run without them, and within the look-ahead and the bonus: two GPUs whose
     * sessions settled on different models once split the work by model, one at 100% and one at 25%.
     */
    @Test
    void warmShapesPickWithinTheChosenModelOnly() {
        Random r = new Random(11);
        String[] sizes = {"64x64", "100x70", "512x512"};
        int bent = 0;
        for (int t = 0; t < 3000; t++) {
            long now = 10_000_000;
            List<Waiting> q = new ArrayList<>();
            for (int i = 0, n = 1 + r.nextInt(80); i < n; i++) {
                String m = MODELS[r.nextInt(MODELS.length)];
                q.add(new Waiting("j" + i, r.nextInt(3) - 1, now - r.nextInt(600_000), i, m, 1 + r.nextInt(1000), m + " " + sizes[r.nextInt(sizes.length)]));
            }
            Set<String> resident = Set.of(MODELS[r.nextInt(4)]);
            Set<String> warm = new HashSet<>();
            for (int k = r.nextInt(5); k > 0; k--) warm.add(MODELS[r.nextInt(4)] + " " + sizes[r.nextInt(sizes.length)]);
            Waiting without = Scheduling.choose(q, now, resident, C);
            Waiting pick = Scheduling.choose(q, now, resident, warm, 0, C);
            List<Waiting> order = Scheduling.order(q, now, C);
            Waiting head = order.getFirst();
            assertEquals(without.model(), pick.model(), "warm shapes changed the model that runs next");
            assertTrue(order.indexOf(pick) < C.lookAhead(), "looked past the look-ahead");
            assertTrue(Scheduling.effectivePriority(pick, now, C) >= Scheduling.effectivePriority(head, now, C) - C.affinityBonus());
            if (pick != without) {
                bent++;
                assertTrue(warm.contains(pick.shape()) && !warm.contains(without.shape()));
                // the best-ranked warm job of that model
                for (Waiting j : order.subList(0, order.indexOf(pick))) {
                    assertTrue(!j.model().equals(pick.model()) || !warm.contains(j.shape())
                            || Scheduling.effectivePriority(j, now, C) < Scheduling.effectivePriority(head, now, C) - C.affinityBonus());
                }
            }
        }
        assertTrue(bent > 100, "warm shapes changed the pick only " + bent + " times in 3000 trials");
    }

    /**
     * Two devices with 4 slots each serve a stream cycling a heavy model (4 steps a job) and two
     * light ones (1 step), as the H200 run's RRDBNet, RDN and ESRGAN jobs. Where every model loads
     * into free room, each device takes jobs in order and both run the heavy model; with affinity
     * always on (no free room), each device keeps to the models it loaded first, which is how one
     * H200 ran 130 of the 150 heavy jobs while the other idled.
     */
    @Test
    void twoDevicesWithRoomShareEveryModel() {
        int[] withRoom = heavyJobsByDevice(Long.MAX_VALUE);
        int total = withRoom[0] + withRoom[1];
        assertTrue(withRoom[0] >= 0.4 * total && withRoom[1] >= 0.4 * total, "heavy jobs by device: " + withRoom[0] + ", " + withRoom[1]);
        int[] noRoom = heavyJobsByDevice(0);
        assertTrue(Math.max(noRoom[0], noRoom[1]) >= 0.7 * total, "affinity without room splits the heavy model: " + noRoom[0] + ", " + noRoom[1]);
    }

    /** Heavy jobs each device ran, simulating steps of 1 s; {@code room}: each device's room without eviction. */
    private static int[] heavyJobsByDevice(long room) {
        String[] cycle = {"light1", "heavy", "light2"};
        List<Waiting> queue = new ArrayList<>();
        for (int i = 0; i < 300; i++) queue.add(new Waiting("j" + i, 0, 0, i, cycle[i % 3], 1));
        List<Set<String>> resident = List.of(new HashSet<>(), new HashSet<>());
        List<List<Long>> ends = List.of(new ArrayList<>(), new ArrayList<>());
        int[] heavy = new int[2];
        for (long step = 0; !queue.isEmpty(); step++) {
            long now = step * 1000;
            for (int k = 0; k < 2; k++) {
                int d = (int) ((k + step) % 2);   // take turns going first
                ends.get(d).removeIf(e -> e <= now);
                Optional<Waiting> next;
                while (!queue.isEmpty() && (next = Scheduling.next(queue, now,
                        new Scheduling.DeviceState(Long.MAX_VALUE, ends.get(d).size(), resident.get(d), Set.of(), room), C)).isPresent()) {
                    Waiting j = next.get();
                    queue.remove(j);
                    resident.get(d).add(j.model());
                    ends.get(d).add(now + (j.model().equals("heavy") ? 4000 : 1000));
                    if (j.model().equals("heavy")) heavy[d]++;
                }
            }
        }
        return heavy;
    }
}
