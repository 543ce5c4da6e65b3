package dev.headroom.runtime;

import dev.headroom.core.TensorData;
import dev.headroom.core.graph.Op;

/**
 * A backend's prefetch slots for streamed weights: the native side of weight streaming. The
 * order of calls comes from {@link dev.headroom.core.residency.SlotSchedule} (through
 * {@link WeightStream}); each call only issues work and returns: on a GPU a copy stream copies
 * a layer's kernel from pinned host memory into a slot after the slot's last use is done, and
 * the session's stream waits for that copy with an event; nobody waits on the host. The slots
 * are charged to the ledger when they are made, once, for as long as they live.
 */
public interface WeightSlots extends AutoCloseable {
    /**
     * Keeps a streamed layer's weights in host memory, in the form a load copies (pinned, in the
     * device's layout, on a GPU); its bias and slopes go to the device now (they are small and
     * always resident). Called for every streamed layer before the first load.
     */
    void stage(int layer, Op.Conv2d op, TensorData kernel, float[] bias, float[] slope);

    /** Copies {@code layer}'s kernel into {@code slot}, after the slot's last {@link #used}. */
    void load(int layer, int slot);

    /** {@code layer}'s weights in {@code slot}; work issued with them waits for the slot's load. */
    Ops.ConvWeights use(int layer, int slot);

    /** The work issued so far with {@code slot} is the last that reads it until its next load. */
    void used(int slot);

    /** Bytes each slot holds (charged to the ledger once per slot). */
    long slotBytes();

    /** Waits for the slots' copies and uses, and frees the slots, the staged copies and the resident biases. */
    @Override
    void close();
}
