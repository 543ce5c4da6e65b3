package dev.headroom.core.sched;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Set;
import org.junit.jupiter.api.Test;

/** A job waits briefly for a server that has its model resident and room for it, never longer than the bound. */
class PlacementTest {
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
}
