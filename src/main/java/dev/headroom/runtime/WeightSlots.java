package dev.headroom.runtime;

import dev.headroom.core.TensorData;
import dev.headroom.core.graph.Op;

/**
 * A backend's prefetch slots for streamed weights: the native side of weight streaming. The
 * order of calls comes from {@link dev.headroom.core.residency.SlotSchedule} (through
 * {@link WeightStream}); each call only issues work and returns: on a GPU a copy stream copies
 * a layer's kernel from pinned host memory into a slot after the slot's last use is done, and
 * the session's stream waits for that copy with an event; nobody waits on the host. The slots
 * are charged to the ledger when they are made, once, for as long as they live. The host side of
 * the streamed layers is {@link #staging}, which may outlive the slots (an evicted model's host copy).
 *
 * <p>A streamed model shared through the residency manager runs passes from several sessions,
 * one pass at a time ({@link WeightStream#begin}); each pass first {@link #bind}s the slots to its
 * session, whose stream its uses then run on. On a GPU the copies for the next pass wait for the
 * previous pass's last uses of the slots with events recorded on that pass's stream.
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

    /**
     * The session whose stream the next pass's uses run on ({@code session} must be of the slots'
     * device and precision). A backend with one stream has nothing to do.
     */
    default void bind(Ops session) {}

    /** The staged layers these slots copy from (host memory; held by the slots until they close). */
    StagedLayers staging();

    /** Bytes each slot holds (charged to the ledger once per slot). */
    long slotBytes();

    /** Waits for the slots' copies and uses, frees the slots and the resident biases, and releases the staged layers. */
    @Override
    void close();
}
