package dev.headroom.runtime.gpu;

import dev.headroom.cuda.Driver;
import dev.headroom.cuda.VmmAndEvents;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * Page-locked host buffers for copies queued on a stream, reused. Pinning is slow (the driver
 * locks every page) and a tile's transfers repeat, so slots are kept and grown in 1 MiB steps.
 * A queued copy reads or writes its slot later, so each slot carries an event recorded after its
 * last copy ({@link #queued}), and {@link #take} hands a slot out again only once that event has
 * completed: a tile's output can travel home while the next tile's input goes out, neither
 * waiting for the other.
 *
 * <p>Host memory, outside the device ledger. One owner thread (the backend's).
 */
final class PinnedSlots implements AutoCloseable {
    /** A slot a caller holds between {@link #take} and {@link #giveBack}. */
    static final class Slot {
        private MemorySegment memory;
        private final MemorySegment event;

        private Slot(MemorySegment event) {
            this.event = event;
        }

        MemorySegment memory() {
            return memory;
        }
    }

    /** Slots kept: an input and an output for each of two runs in flight; more are made only while all of these are held. */
    private static final int KEEP = 4;
    private static final long STEP = 1L << 20;

    private final Driver cu;
    private final VmmAndEvents events = VmmAndEvents.get();
    private final List<Slot> free = new ArrayList<>(), held = new ArrayList<>();

    PinnedSlots(Driver cu) {
        this.cu = cu;
    }

    /**
     * A slot of at least {@code bytes}, re-pinning as little as possible (pinning 25 MB costs
     * milliseconds, a tile's whole budget): the smallest free slot that is big enough and whose
     * copies are done; else a new slot while fewer than {@link #KEEP} exist; else the earliest
     * given-back free slot that is big enough, once its copies are done; else a free slot grown.
     * Small inputs and large outputs so keep slots of their own.
     */
    Slot take(long bytes) {
        Slot pick = null;
        for (Slot s : free) {
            if (s.memory.byteSize() >= bytes && (pick == null || s.memory.byteSize() < pick.memory.byteSize()) && events.eventDone(s.event)) pick = s;
        }
        if (pick == null && free.size() + held.size() >= KEEP && !free.isEmpty()) {
            for (Slot s : free) if (pick == null && s.memory.byteSize() >= bytes) pick = s;
            if (pick == null) pick = free.getFirst();
            events.eventSynchronize(pick.event);
        }
        if (pick == null) {
            pick = new Slot(events.eventCreate());
        } else {
            free.remove(pick);
        }
        held.add(pick);
        if (pick.memory == null || pick.memory.byteSize() < bytes) {
            if (pick.memory != null) cu.memFreeHost(pick.memory);
            pick.memory = null;
            pick.memory = cu.memAllocHost(Math.max(STEP, (bytes + STEP - 1) / STEP * STEP));
        }
        return pick;
    }

    /** Marks the end of the copies queued so far on {@code stream} that use {@code s}. */
    void queued(Slot s, MemorySegment stream) {
        events.eventRecord(s.event, stream);
    }

    /** Blocks until the copies queued with {@code s} are done (its data is then there to read). */
    void await(Slot s) {
        events.eventSynchronize(s.event);
    }

    /** Returns a slot; it is handed out again once its queued copies are done. */
    void giveBack(Slot s) {
        if (held.remove(s)) free.add(s);
    }

    /** Frees every slot, held ones too (call after the device is idle). */
    @Override
    public void close() {
        List<Slot> all = new ArrayList<>(free);
        all.addAll(held);
        free.clear();
        held.clear();
        for (Slot s : all) {
            if (s.memory != null) cu.memFreeHost(s.memory);
            events.eventDestroy(s.event);
        }
    }
}
