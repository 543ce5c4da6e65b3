package dev.headroom.runtime;

import dev.headroom.core.TensorData;
import dev.headroom.core.graph.Op;

/** Slots of a fake device that do nothing: a test overrides the calls it watches or fails (a class's own methods win over these). */
interface IdleSlots extends WeightSlots {
    @Override
    default void stage(int layer, Op.Conv2d op, TensorData kernel, float[] bias, float[] slope) {}

    @Override
    default void load(int layer, int slot) {}

    @Override
    default Ops.ConvWeights use(int layer, int slot) {
        return null;
    }

    @Override
    default void used(int slot) {}

    @Override
    default StagedLayers staging() {
        throw new UnsupportedOperationException("a fake device's slots stage nothing");
    }

    @Override
    default long slotBytes() {
        return 1;
    }

    @Override
    default void close() {}
}
