package dev.headroom.runtime.cpu;

import dev.headroom.core.TensorData;
import dev.headroom.core.graph.Op;
import dev.headroom.runtime.Ops;
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
final class CpuWeightSlots implements WeightSlots {
    private record Staged(Op.Conv2d op, TensorData kernel, float[] bias, float[] slope) {}

    private final DeviceMemory memory;
    private final long slotBytes;
    private final Budget node;
    private final CpuConv.Prepared[] slots;
    private final Map<Integer, Staged> staged = new HashMap<>();
    private boolean closed;

    CpuWeightSlots(DeviceMemory memory, int count, long slotBytes) {
        this.memory = memory;
        this.slotBytes = slotBytes;
        this.node = memory.reserveWeights(count * slotBytes);
        this.slots = new CpuConv.Prepared[count];
    }

    /** What a layer's slot holds: the fp32 kernel padded to the vector width (and its padded bias and slopes). */
    static long bytes(Op.Conv2d op) {
        return CpuMemoryModel.INSTANCE.weightBytes(op);
    }

    @Override
    public void stage(int layer, Op.Conv2d op, TensorData kernel, float[] bias, float[] slope) {
        staged.put(layer, new Staged(op, kernel, bias, slope));
    }

    @Override
    public void load(int layer, int slot) {
        Staged s = staged.get(layer);
        if (s == null) throw new IllegalStateException("layer " + layer + " was never staged for streaming");
        slots[slot] = CpuConv.prepare(s.op, s.kernel.data(), s.bias, s.slope);
    }

    @Override
    public Ops.ConvWeights use(int layer, int slot) {
        CpuConv.Prepared p = slots[slot];
        if (p == null || p.op() != staged.get(layer).op) throw new IllegalStateException("slot " + slot + " does not hold layer " + layer);
        return p;
    }

    @Override
    public void used(int slot) {}

    @Override
    public long slotBytes() {
        return slotBytes;
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        java.util.Arrays.fill(slots, null);
        memory.unreserve(node, slots.length * slotBytes);
    }
}
