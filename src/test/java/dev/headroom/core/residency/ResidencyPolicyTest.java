package dev.headroom.core.residency;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.residency.ResidencyPolicy.Priority;
import dev.headroom.core.residency.ResidencyPolicy.Status;
import dev.headroom.core.residency.ResidencyPolicy.Where;
import dev.headroom.testing.Randoms;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The residency policy on a fake device: random sequences of acquire, load, release, make-room
 * and host-cache trimming, each decision checked against the rules written out again here
 * (priority order, LRU within a class, in-use and pinned models never chosen, as few as needed,
 * host copies within budget).
 */
class ResidencyPolicyTest {
    /** Eviction rank, written independently of the policy: lower goes first. */
    private static int rank(Priority p) {
        return switch (p) {
            case LOW -> 0;
            case NORMAL -> 1;
            case HIGH -> 2;
            case PINNED -> 3;
        };
    }

    @Test
    void randomSequencesFollowTheRules() {
        Random r = new Random(Randoms.seed());
        for (int trial = 0; trial < 200; trial++) {
            long hostBudget = r.nextInt(4) == 0 ? 0 : 1 + r.nextInt(3000);
            ResidencyPolicy p = new ResidencyPolicy(hostBudget);
            int models = 2 + r.nextInt(8);
            Map<String, Long> size = new HashMap<>();
            for (int m = 0; m < models; m++) size.put("m" + m, 1L + r.nextInt(1000));
            Map<String, Integer> refs = new HashMap<>();
            for (int step = 0; step < 300; step++) {
                String k = "m" + r.nextInt(models);
                switch (r.nextInt(5)) {
                    case 0, 1 -> {
                        Priority pr = Priority.values()[r.nextInt(Priority.values().length)];
                        Where w = p.acquire(k, pr);
                        refs.merge(k, 1, Integer::sum);
                        if (w != Where.DEVICE) {
                            long host = p.fitsHostCache(size.get(k)) ? size.get(k) : 0;
                            p.onDevice(k, size.get(k), host);
                        }
                        trimHost(p, hostBudget);
                    }
                    case 2 -> {
                        if (refs.getOrDefault(k, 0) > 0) {
                            p.release(k);
                            refs.merge(k, -1, Integer::sum);
                        } else if (p.status(k) != null) {
                            assertThrows(IllegalStateException.class, () -> p.release(k), "a release without an acquire is refused");
                        }
                    }
                    default -> {
                        long need = 1 + r.nextInt(2500);
                        List<String> v = p.victims(need);
                        checkVictims(p, need, v);
                        for (String x : v) p.offDevice(x);
                        trimHost(p, hostBudget);
                    }
                }
                for (Status s : p.statuses()) {
                    assertEquals(refs.getOrDefault(s.key(), 0), s.refs(), "reference count of " + s.key());
                    if (s.refs() > 0) assertEquals(Where.DEVICE, s.where(), "a model in use stays on the device: " + s);
                }
            }
        }
    }

    /** Victims are a prefix of the idle, unpinned models in (rank, last use) order, the shortest one holding need; or none if all hold less. */
    private static void checkVictims(ResidencyPolicy p, long need, List<String> victims) {
        List<Status> idle = new ArrayList<>();
        for (Status s : p.statuses()) if (s.where() == Where.DEVICE && s.refs() == 0 && s.priority() != Priority.PINNED) idle.add(s);
        idle.sort(Comparator.comparingInt((Status s) -> rank(s.priority())).thenComparingLong(Status::lastUse));
        long all = idle.stream().mapToLong(Status::deviceBytes).sum();
        if (all < need) {
            assertTrue(victims.isEmpty(), "idle models hold " + all + " < " + need + ": none chosen, got " + victims);
            return;
        }
        long sum = 0;
        for (int i = 0; i < victims.size(); i++) {
            assertEquals(idle.get(i).key(), victims.get(i), "victim " + i + " in priority then LRU order");
            sum += idle.get(i).deviceBytes();
            if (i < victims.size() - 1) assertTrue(sum < need, "no more victims than needed");
        }
        assertTrue(sum >= need, "victims free " + sum + " >= " + need);
    }

    /** Applies the policy's host trimming and checks it: LRU first among droppable copies, and within budget if droppable copies allow. */
    private static void trimHost(ResidencyPolicy p, long budget) {
        List<String> drop = p.hostOverflow();
        long lastUse = -1;
        for (String k : drop) {
            Status s = p.status(k);
            assertTrue(s.hostCopy());
            assertFalse(s.refs() > 0 && s.where() != Where.DEVICE, "a copy being loaded from is kept");
            assertTrue(s.lastUse() > lastUse, "least recently used first");
            lastUse = s.lastUse();
            p.hostDropped(k);
        }
        long held = p.hostBytes();
        if (held > budget) {
            for (Status s : p.statuses()) {
                assertFalse(s.hostCopy() && (s.where() == Where.DEVICE || s.refs() == 0), "over budget only with copies being loaded from: " + s);
            }
        }
    }

    @Test
    void pinnedAndInUseModelsAreNeverChosenAndLruDecidesWithinAClass() {
        ResidencyPolicy p = new ResidencyPolicy(0);
        for (String k : List.of("a", "b", "c", "pin", "busy")) {
            p.acquire(k, k.equals("pin") ? Priority.PINNED : Priority.NORMAL);
            p.onDevice(k, 100, 0);
        }
        for (String k : List.of("a", "b", "c", "pin")) p.release(k);
        p.acquire("a", Priority.NORMAL);   // a is now the most recent
        p.release("a");
        assertEquals(List.of("b"), p.victims(100));
        assertEquals(List.of("b", "c", "a"), p.victims(300));
        assertEquals(List.of(), p.victims(301), "pin and busy cannot go: no choice helps");
        p.acquire("c", Priority.LOW);
        p.release("c");
        assertEquals(List.of("c"), p.victims(1), "a LOW model goes before older NORMAL ones");
    }

    @Test
    void anEvictedModelKeepsItsHostCopyWithinTheBudgetAndTheOldestGoesFirst() {
        ResidencyPolicy p = new ResidencyPolicy(250);
        for (String k : List.of("a", "b", "c")) {
            p.acquire(k, Priority.NORMAL);
            p.onDevice(k, 100, 100);
            p.release(k);
        }
        assertEquals(List.of("a"), p.hostOverflow(), "300 bytes of copies in a 250 budget: the oldest goes");
        p.hostDropped("a");
        for (String k : p.victims(300)) p.offDevice(k);
        assertEquals(Where.DISK, p.status("a").where());
        assertEquals(Where.HOST, p.status("b").where());
        assertEquals(Where.HOST, p.status("c").where());
        assertFalse(p.fitsHostCache(251));
    }

    /**
     * Eviction by name on random sequences, against state kept here: IN_USE exactly while the test
     * holds a reference, EVICT exactly when the model is on the device and idle (pinned too),
     * NOT_ON_DEVICE otherwise (unknown names too); after an eviction it is off the device and a
     * reference taken again finds it gone.
     */
    @Test
    void evictByNameRefusesModelsInUseAndEvictsIdleOnes() {
        Random r = new Random(Randoms.seed());
        for (int trial = 0; trial < 200; trial++) {
            ResidencyPolicy p = new ResidencyPolicy(r.nextBoolean() ? 0 : 500);
            Map<String, Integer> refs = new HashMap<>();
            java.util.Set<String> onDevice = new java.util.HashSet<>();
            int evicted = 0;
            for (int step = 0; step < 200; step++) {
                String k = "m" + r.nextInt(5);
                switch (r.nextInt(4)) {
                    case 0 -> {
                        Where w = p.acquire(k, Priority.values()[r.nextInt(Priority.values().length)]);
                        assertEquals(onDevice.contains(k), w == Where.DEVICE, "where " + k + " is");
                        if (!onDevice.contains(k)) p.onDevice(k, 100, 0);
                        onDevice.add(k);
                        refs.merge(k, 1, Integer::sum);
                    }
                    case 1 -> {
                        if (refs.getOrDefault(k, 0) > 0) {
                            p.release(k);
                            refs.merge(k, -1, Integer::sum);
                        }
                    }
                    default -> {
                        ResidencyPolicy.ByName want = refs.getOrDefault(k, 0) > 0 ? ResidencyPolicy.ByName.IN_USE
                                : onDevice.contains(k) ? ResidencyPolicy.ByName.EVICT : ResidencyPolicy.ByName.NOT_ON_DEVICE;
                        ResidencyPolicy.ByName got = p.evictByName(k);
                        assertEquals(want, got, k + " with " + refs.getOrDefault(k, 0) + " references, on device " + onDevice.contains(k));
                        if (got == ResidencyPolicy.ByName.EVICT) {
                            p.offDevice(k);
                            onDevice.remove(k);
                            evicted++;
                            assertEquals(Where.DISK, p.status(k).where(), "evicted, no host copy: back on disk");
                        }
                    }
                }
            }
            assertEquals(ResidencyPolicy.ByName.NOT_ON_DEVICE, p.evictByName("never-seen"));
            // every reference given back: each model on the device can now go by name, and does
            for (var e : refs.entrySet()) for (int k = 0; k < e.getValue(); k++) p.release(e.getKey());
            for (String k : List.copyOf(onDevice)) {
                assertEquals(ResidencyPolicy.ByName.EVICT, p.evictByName(k), k + " idle on the device");
                p.offDevice(k);
                evicted++;
            }
            for (Status st : p.statuses()) assertEquals(Where.DISK, st.where(), "all evicted: " + st);
            assertTrue(evicted > 0 || refs.isEmpty(), "trial " + trial + " loaded models but evicted none");
        }
    }
}
