package dev.headroom.runtime.cpu;

import dev.headroom.core.TensorData;
import dev.headroom.core.graph.Op;
import dev.headroom.runtime.Ops;
import dev.headroom.runtime.StagedLayers;
import dev.headroom.runtime.StagedSlots;
import dev.headroom.runtime.WeightSlots;
import dev.headroom.runtime.memory.Budget;
import dev.headroom.runtime.memory.DeviceMemory;
import java.util.HashMap;
import java.util.Map;

/**
 * Weight streaming on the CPU, the same schedule run trivially: a streamed layer stays as the
 * model holds it (16-bit, compact or fp32) and a "load" prepares it into a slot in the
 * convolution's fp32 layout, synchronously, so nothing needs waiting for. The slots are charged to
 * the ledger up front, as a GPU's are; the staged layers are host memory the model already holds.
 */
final class CpuWeightSlots extends StagedSlots<CpuWeightSlots.Staging> {
    private record Staged(Op.Conv2d op, TensorData kernel, float[] bias, float[] slope) {}

    /** The streamed layers as the model holds them (its own arrays: nothing to free). */
    static final class Staging extends StagedLayers {
        private final DeviceMemory memory;
        private final Map<Integer, Staged> layers = new HashMap<>();
        private long bytes;

        Staging(DeviceMemory memory) {
            this.memory = memory;
        }

        @Override
        public long bytes() {
            return bytes;
        }

        @Override
        public WeightSlots slots(int count, long slotBytes) {
            return holding(true, () -> new CpuWeightSlots(memory, this, count, slotBytes));
        }

        @Override
        protected void free() {
            layers.clear();
        }
    }

    private final DeviceMemory memory;
    private final Budget node;
    private final CpuConv.Prepared[] slots;

    /** Slots over {@code staging}, whose reference they take (released on close). */
    private CpuWeightSlots(DeviceMemory memory, Staging staging, int count, long slotBytes) {
        super(staging, slotBytes);
        this.memory = memory;
        this.node = memory.reserveWeights(count * slotBytes);
        this.slots = new CpuConv.Prepared[count];
    }

    /** Slots with nothing staged yet; they hold the new staging's one reference. */
    static CpuWeightSlots of(DeviceMemory memory, int count, long slotBytes) {
        Staging staging = new Staging(memory);
        return staging.holding(false, () -> new CpuWeightSlots(memory, staging, count, slotBytes));
    }

    /** What a layer's slot holds: the fp32 kernel padded to the vector width (and its padded bias and slopes). */
    static long bytes(Op.Conv2d op) {
        return CpuMemoryModel.INSTANCE.weightBytes(op);
    }

    @Override
    public void stage(int layer, Op.Conv2d op, TensorData kernel, float[] bias, float[] slope) {
        Staged old = staging.layers.put(layer, new Staged(op, kernel, bias, slope));
        if (old == null) staging.bytes += CpuMemoryModel.heldBytes(op, kernel);
    }

    @Override
    public void load(int layer, int slot) {
        Staged s = staging.layers.get(layer);
        if (s == null) throw new IllegalStateException("layer " + layer + " was never staged for streaming");
        slots[slot] = CpuConv.prepare(s.op, s.kernel.data(), s.bias, s.slope);
    }

    @Override
    public Ops.ConvWeights use(int layer, int slot) {
        CpuConv.Prepared p = slots[slot];
        if (p == null || p.op() != staging.layers.get(layer).op) throw new IllegalStateException("slot " + slot + " does not hold layer " + layer);
        return p;
    }

    @Override
    public void used(int slot) {}

    @Override
    protected void freeSlots() {
        java.util.Arrays.fill(slots, null);
        memory.unreserve(node, slots.length * slotBytes());
    }
}
