package dev.headroom.runtime.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The bookkeeping of serialised cuDNN plans (the bytes here stand in for cuDNN's; GpuSerializedPlansTest uses real ones). */
class SerializedPlansTest {
    @TempDir
    Path dir;

    private static final String H200 = "NVIDIA H200 sm_90 driver 13000 cudnn 91400";

    private long files() throws Exception {
        try (Stream<Path> f = Files.walk(dir)) {
            return f.filter(p -> p.toString().endsWith(".json")).count();
        }
    }

    @Test
    void aPlanStoredByOneDeviceIsReadByAnotherAndByTheNextProcess() throws Exception {
        SerializedPlans a = SerializedPlans.acquire(dir, H200), b = SerializedPlans.acquire(dir, H200);
        assertSame(a, b, "two devices of one kind share one store");
        assertNull(a.get("spec 1 origin 0"));
        a.put("spec 1 origin 0", new byte[] {1, 2, 3});
        a.put("spec 1 origin 0", new byte[] {9});   // one already held is kept
        a.put("not serialisable", null);
        assertArrayEquals(new byte[] {1, 2, 3}, b.get("spec 1 origin 0"));
        assertEquals(1, files(), "one file per plan; none for an engine cuDNN does not serialise");
        SerializedPlans.release(a);
        SerializedPlans.release(b);
        SerializedPlans next = SerializedPlans.acquire(dir, H200);
        assertNotSame(a, next, "released by all: a new process's store");
        assertArrayEquals(new byte[] {1, 2, 3}, next.get("spec 1 origin 0"), "read from its file");
        SerializedPlans other = SerializedPlans.acquire(dir, H200.replace("91400", "91900"));
        assertNull(other.get("spec 1 origin 0"), "another cuDNN: nothing promised, nothing read");
        assertEquals(1L, next.stats().get("hits"), "this store read it once");
        SerializedPlans.release(other);
        SerializedPlans.release(next);
    }

    @Test
    void aPlanCuDnnRefusesIsForgottenWithItsFile() throws Exception {
        SerializedPlans s = new SerializedPlans(dir, 1 << 20);
        s.put("k", new byte[] {7});
        assertTrue(s.holds("k"), "held: a plan built again is not serialised again");
        s.refused("k");
        assertFalse(s.holds("k"));
        assertEquals(0, files());
        assertNull(s.get("k"), "built and stored again by the next that needs it");
        assertEquals(1L, s.stats().get("refused"));
    }

    @Test
    void memoryIsBoundedAndWhatLeavesItIsReadFromItsFile() throws Exception {
        SerializedPlans s = new SerializedPlans(dir, 10);
        s.put("a", new byte[6]);
        s.put("b", new byte[6]);   // over 10 bytes: "a", the least recently used, leaves memory
        assertEquals(6L, s.stats().get("bytes_in_memory"));
        assertArrayEquals(new byte[6], s.get("a"), "from its file");
        assertEquals(6L, s.stats().get("bytes_in_memory"), "now b left");
    }
}
