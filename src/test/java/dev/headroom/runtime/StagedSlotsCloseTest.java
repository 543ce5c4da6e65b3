package dev.headroom.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/** A slot set whose backend fails to free its slots still gives back its staged layers (pinned host memory on a GPU), once. */
class StagedSlotsCloseTest {

    /** Staged layers that count how often they are freed. */
    private static final class CountedLayers extends StagedLayers {
        int frees;
        boolean failFree;

        @Override
        public long bytes() {
            return 1;
        }

        @Override
        public WeightSlots slots(int count, long slotBytes) {
            throw new UnsupportedOperationException();
        }

        @Override
        protected void free() {
            frees++;
            if (failFree) throw new IllegalStateException("cuMemFreeHost failed (injected)");
        }
    }

    /** Slots whose backend free throws, as a CUDA wait does on a context with a sticky error. */
    private static final class FailingSlots extends StagedSlots<CountedLayers> implements IdleSlots {
        int tries;

        FailingSlots(CountedLayers staging) {
            super(staging, 64);
        }

        @Override
        protected void freeSlots() {
            tries++;
            throw new IllegalStateException("CUDA_ERROR_ILLEGAL_ADDRESS in cuStreamSynchronize (injected)");
        }

        void failWhileMaking() {
            closeKeepingStaging();
        }
    }

    @Test
    void aFailedFreeOfTheSlotsStillReleasesTheStagedLayersOnceAndIsThrown() {
        CountedLayers staging = new CountedLayers();
        FailingSlots slots = new FailingSlots(staging);
        var e = assertThrows(IllegalStateException.class, slots::close);
        assertEquals("CUDA_ERROR_ILLEGAL_ADDRESS in cuStreamSynchronize (injected)", e.getMessage());
        assertEquals(1, staging.frees, "the staged layers are freed although the slots' free failed");
        slots.close();
        assertEquals(1, slots.tries, "a second close does nothing");
        assertEquals(1, staging.frees);
        assertThrows(IllegalStateException.class, staging::retain, "the layers are gone");
    }

    @Test
    void whenReleasingTheStagedLayersFailsTooTheSlotsFailureIsThrownCarryingIt() {
        CountedLayers staging = new CountedLayers();
        staging.failFree = true;
        FailingSlots slots = new FailingSlots(staging);
        var e = assertThrows(IllegalStateException.class, slots::close);
        assertEquals("CUDA_ERROR_ILLEGAL_ADDRESS in cuStreamSynchronize (injected)", e.getMessage(), "the first failure, not the release's");
        assertEquals(1, e.getSuppressed().length, "the release's failure rides on it");
        assertEquals("cuMemFreeHost failed (injected)", e.getSuppressed()[0].getMessage());
        assertEquals(1, staging.frees);
    }

    @Test
    void slotsThatCannotBeMadeAndLayersThatCannotBeFreedThrowTheMakingsFailureCarryingTheFrees() {
        CountedLayers staging = new CountedLayers();
        staging.failFree = true;
        var e = assertThrows(IllegalStateException.class, () -> staging.holding(false, () -> {
            throw new IllegalStateException("cuMemAlloc of 2 slots failed (injected)");
        }));
        assertEquals("cuMemAlloc of 2 slots failed (injected)", e.getMessage(), "the making's failure, not the release's");
        assertEquals("cuMemFreeHost failed (injected)", e.getSuppressed()[0].getMessage());
        assertEquals(1, staging.frees);
    }

    @Test
    void aConstructorThatFailsLeavesTheStagedLayersToItsCaller() {
        CountedLayers staging = new CountedLayers();
        FailingSlots slots = new FailingSlots(staging);
        assertThrows(IllegalStateException.class, slots::failWhileMaking);
        assertEquals(0, staging.frees, "the caller still holds its reference");
        slots.close();
        assertEquals(1, slots.tries, "closed once");
        assertSame(staging, staging.retain());
        staging.release();
        staging.release();
        assertEquals(1, staging.frees);
    }
}
