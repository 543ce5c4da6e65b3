package dev.headroom.core.sched;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * A job waits briefly for a server (or a device of this server) that has its model resident and a
 * free slot, never longer than the bound; between devices only when loading the model here would
 * evict another, so that with room every device runs every model.
 */
class PlacementTest {
    private static final String[] MODELS = {"a", "b", "c"};

    @Test
    void leavesAJobToAnIdleServerWithItsModelForABoundedTime() {
        Set<String> here = Set.of("a"), others = Set.of("b");
        assertTrue(Placement.leaveToOthers("b", 0, here, others, 2000), "resident elsewhere, not here: leave it");
        assertTrue(Placement.leaveToOthers("b", 1999, here, others, 2000));
        assertFalse(Placement.leaveToOthers("b", 2000, here, others, 2000), "waited long enough: anyone takes it");
        assertFalse(Placement.leaveToOthers("a", 0, here, Set.of("a"), 2000), "resident here too: take it");
        assertFalse(Placement.leaveToOthers("c", 0, here, others, 2000), "resident nowhere: take it");
        assertFalse(Placement.leaveToOthers("b", 0, here, Set.of(), 2000), "the server with it has no free slot: take it");
    }

    private static Set<String> someModels(Random r) {
        Set<String> s = new HashSet<>();
        for (String m : MODELS) if (r.nextBoolean()) s.add(m);
        return s;
    }

    /** Properties of the rule between devices, over random situations. */
    @Test
    void betweenDevicesAJobIsLeftOnlyWhereLoadingItHereWouldEvict() {
        Random r = new Random(16);
        int left = 0;
        for (int trial = 0; trial < 20_000; trial++) {
            String model = MODELS[r.nextInt(MODELS.length)];
            long waited = r.nextInt(4000), need = r.nextInt(100), room = r.nextInt(100), max = 2000;
            Set<String> here = someModels(r), free = someModels(r);
            boolean leave = Placement.leaveToOtherDevice(model, waited, need, room, here, free, max);
            String why = trial + ": " + model + " waited " + waited + " need " + need + " room " + room + " here " + here + " free devices " + free;
            if (need <= room) assertFalse(leave, "fits without evicting: taken here (" + why + ")");
            if (waited >= max) assertFalse(leave, "waited the bound: taken here (" + why + ")");
            if (here.contains(model)) assertFalse(leave, "resident here: taken here (" + why + ")");
            if (!free.contains(model)) assertFalse(leave, "no free device has it: taken here (" + why + ")");
            // more room never leaves more
            if (!leave) assertFalse(Placement.leaveToOtherDevice(model, waited, need, room + 1 + r.nextInt(50), here, free, max), why);
            // it is the fleet rule, applied only where a load would evict
            assertEquals(need > room && Placement.leaveToOthers(model, waited, here, free, max), leave, why);
            if (leave) left++;
        }
        assertTrue(left > 500, "the rule did leave jobs in some trials: " + left);
    }

    /**
     * Two devices of one server, a stream of a heavy model (4 steps a job) between two light ones (1
     * step), admitted as the server admits (placement, then the scheduling policy). With room for
     * every model, each device runs about half of the heavy jobs (the H200 x2 run: 60 and 60 of
     * 120). Where each device holds one model and a load would evict it, jobs wait for the device
     * that has their model only for a bounded time: every job still runs.
     */
    @Test
    void twoDevicesShareTheHeavyModelWithRoomAndRunEveryJobWithout() {
        Sim roomy = simulate(true);
        int total = roomy.heavy[0] + roomy.heavy[1];
        assertEquals(100, total);
        assertTrue(roomy.heavy[0] >= 40 && roomy.heavy[1] >= 40, "heavy jobs by device with room: " + roomy.heavy[0] + ", " + roomy.heavy[1]);
        Sim tight = simulate(false);
        assertEquals(300, tight.ran, "every job ran where each device holds one model");
    }

    private record Sim(int[] heavy, int ran) {}

    /**
     * Steps of 100 ms; two slots a device; {@code roomy}: every model fits beside the others, else a device holds one model.
     */
    private static Sim simulate(boolean roomy) {
        String[] cycle = {"light1", "heavy", "light2"};
        List<Waiting> queue = new ArrayList<>();
        // with room the models take turns job by job; without, in runs of 40 (a look-ahead of 32 then sees one model only)
        for (int i = 0; i < 300; i++) queue.add(new Waiting("j" + i, 0, 0, i, cycle[roomy ? i % 3 : i / 40 % 3], 1));
        List<Set<String>> resident = List.of(new HashSet<>(), new HashSet<>());
        List<List<Long>> ends = List.of(new ArrayList<>(), new ArrayList<>());
        List<List<String>> runningModels = List.of(new ArrayList<>(), new ArrayList<>());
        int[] heavy = new int[2];
        int ran = 0;
        Scheduling.Config policy = Scheduling.Config.DEFAULT.withMaxRunning(2);
        for (long step = 0; !queue.isEmpty() && step < 100_000; step++) {
            long now = step * 100;
            for (int d = 0; d < 2; d++) {
                for (int k = ends.get(d).size() - 1; k >= 0; k--) {
                    if (ends.get(d).get(k) <= now) {
                        ends.get(d).remove(k);
                        runningModels.get(d).remove(k);
                    }
                }
            }
            for (int t = 0; t < 2; t++) {
                int d = (int) ((t + step) % 2), o = 1 - d;
                Set<String> here = resident.get(d);
                Set<String> freeOthers = ends.get(o).size() < 2 ? resident.get(o) : Set.of();
                // a device that holds one model evicts it to load another, which it can only while no job of its model runs
                long room = roomy || here.isEmpty() ? Long.MAX_VALUE : 1;
                while (ends.get(d).size() < 2) {
                    List<Waiting> candidates = new ArrayList<>();
                    for (Waiting w : queue) {
                        long need = here.contains(w.model()) ? 1 : 2;
                        if (Placement.leaveToOtherDevice(w.model(), now - w.enqueued(), need, room, here, freeOthers, 2000)) continue;
                        candidates.add(new Waiting(w.id(), w.priority(), w.enqueued(), w.seq(), w.model(), need));
                    }
                    Optional<Waiting> next = Scheduling.next(candidates, now,
                            new Scheduling.DeviceState(Long.MAX_VALUE, ends.get(d).size(), here, Set.of(), room), policy);
                    if (next.isEmpty()) break;
                    Waiting j = next.get();
                    if (!here.contains(j.model()) && !roomy && !runningModels.get(d).isEmpty()) break;   // it would evict a model in use
                    queue.removeIf(w -> w.id().equals(j.id()));
                    if (!here.contains(j.model())) {
                        if (!roomy) here.clear();
                        here.add(j.model());
                        room = roomy ? Long.MAX_VALUE : 1;
                    }
                    ends.get(d).add(now + (j.model().equals("heavy") ? 400 : 100));
                    runningModels.get(d).add(j.model());
                    if (j.model().equals("heavy")) heavy[d]++;
                    ran++;
                }
            }
        }
        return new Sim(heavy, ran);
    }
}
