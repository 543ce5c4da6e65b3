package dev.headroom.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class CloseStepsTest {
    @Test
    void everyStepRunsAfterAFailureAndTheFirstFailureCarriesTheOthers() {
        List<String> ran = new ArrayList<>();
        IllegalStateException sync = new IllegalStateException("cuStreamSynchronize: an illegal memory access was encountered");
        IllegalStateException audit = new IllegalStateException("2 buffers (8 MiB) still live");
        IllegalStateException thrown = assertThrows(IllegalStateException.class, () -> CloseSteps.run(
                () -> {
                    ran.add("wait");
                    throw sync;
                },
                () -> ran.add("free workspace"),
                () -> {
                    ran.add("audit");
                    throw audit;
                },
                () -> ran.add("destroy stream")));
        assertEquals(List.of("wait", "free workspace", "audit", "destroy stream"), ran, "a failed step does not skip the frees after it");
        assertSame(sync, thrown, "the first failure is the one thrown");
        assertEquals(List.of(audit), List.of(thrown.getSuppressed()), "the later failure rides on it");
    }

    @Test
    void anErrorInAStepStillLetsTheLaterStepsRunAndIsThrown() {
        List<String> ran = new ArrayList<>();
        OutOfMemoryError oom = new OutOfMemoryError("Java heap space");
        OutOfMemoryError thrown = assertThrows(OutOfMemoryError.class, () -> CloseSteps.run(
                () -> {
                    throw oom;
                },
                () -> ran.add("release the context")));
        assertEquals(List.of("release the context"), ran, "as a finally would");
        assertSame(oom, thrown);
    }

    @Test
    void stepsThatAllSucceedThrowNothing() {
        List<Integer> ran = new ArrayList<>();
        CloseSteps.run(() -> ran.add(1), () -> ran.add(2));
        assertEquals(List.of(1, 2), ran);
    }
}
