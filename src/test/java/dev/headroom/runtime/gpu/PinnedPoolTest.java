package dev.headroom.runtime.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The pinned-buffer pool's bookkeeping, on plain host memory standing in for pinned memory (no GPU needed). */
class PinnedPoolTest {
    @Test
    void reusesBuffersOfTheSameSizeAndUnpinsBeyondTheIdleLimit() {
        try (Arena arena = Arena.ofConfined()) {
            List<MemorySegment> unpinned = new ArrayList<>();
            PinnedPool pool = new PinnedPool(arena::allocate, unpinned::add, 300);
            MemorySegment a = pool.take(100), b = pool.take(100), c = pool.take(200);
            assertEquals(3, pool.pins());
            assertEquals(400, pool.pinnedBytes());
            pool.give(a);
            pool.give(c);                                // 100 + 200 idle: at the limit
            pool.give(b);                                // would exceed it: unpinned
            assertEquals(List.of(b), unpinned);
            assertEquals(300, pool.idleBytes());
            assertSame(a, pool.take(100), "an idle buffer of the size is reused");
            assertSame(c, pool.take(200));
            assertEquals(3, pool.pins(), "no new pinning for reused sizes");
            pool.take(50);
            assertEquals(4, pool.pins());
            assertEquals(350, pool.pinnedBytes());
            assertEquals(400, pool.peakBytes(), "the most pinned at once: before b was unpinned");
            pool.give(a);
            pool.close();
            assertEquals(List.of(b, a), unpinned, "close unpins the idle ones");
            assertEquals(0, pool.idleBytes());
        }
    }
}
