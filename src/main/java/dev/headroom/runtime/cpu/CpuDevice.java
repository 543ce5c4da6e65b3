package dev.headroom.runtime.cpu;

import dev.headroom.core.Precision;
import dev.headroom.core.TensorData;
import dev.headroom.core.graph.Op;
import dev.headroom.core.plan.DeviceModel;
import dev.headroom.runtime.Device;
import dev.headroom.runtime.HostCopy;
import dev.headroom.runtime.Ops;
import dev.headroom.runtime.Session;
import dev.headroom.runtime.memory.Budget;
import dev.headroom.runtime.memory.DeviceMemory;
import dev.headroom.runtime.memory.MemoryOptions;
import dev.headroom.runtime.memory.StreamEvents;

/**
 * The CPU as a {@link Device}: one {@link DeviceMemory} over heap segments (the same caching
 * allocator, ledger, budget and trace as on a GPU; the budget defaults to three quarters of the
 * maximum heap) shared by every {@link CpuOps} session. Work runs on the calling thread (each op
 * spreads its rows over the common fork-join pool), so a block is free for anyone the moment it
 * is freed: one stream. Weights are plain fp32 arrays, shared read-only by every session.
 */
public final class CpuDevice implements Device {
    final HeapSegments heap = new HeapSegments();
    private final DeviceMemory memory;

    public CpuDevice() {
        this(MemoryOptions.DEFAULT);
    }

    public CpuDevice(MemoryOptions options) {
        Runtime rt = Runtime.getRuntime();
        long budget = options.budget() > 0 ? options.budget() : rt.maxMemory() / 4 * 3;
        DeviceMemory.Probe probe = new DeviceMemory.Probe() {
            public long free() { return rt.maxMemory() - rt.totalMemory() + rt.freeMemory(); }
            public long total() { return rt.maxMemory(); }
            public String otherProcesses() { return "n/a (Java heap)"; }
        };
        memory = new DeviceMemory("cpu", budget, heap, null, StreamEvents.SINGLE_STREAM, options.thresholds(), options.newTrace(), probe);
    }

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public DeviceMemory memory() {
        return memory;
    }

    @Override
    public boolean accelerator() {
        return false;
    }

    @Override
    public Precision defaultPrecision() {
        return Precision.F32;
    }

    @Override
    public boolean supports(Precision p) {
        return p == Precision.F32;
    }

    @Override
    public Session openSession(Precision precision) {
        if (!supports(precision)) throw new IllegalArgumentException("the CPU backend computes in fp32 only, not " + precision);
        return new CpuOps(this, false);
    }

    /**
     * fp32 arrays in {@link CpuConv}'s layout, charged to the ledger without a block (they are
     * plain arrays; {@link DeviceMemory#reserveWeights}) so that weights count against the budget
     * as a GPU's do; closing them gives the charge back.
     */
    @Override
    public Ops.ConvWeights prepareConv(Op.Conv2d op, float[] kernel, float[] bias, float[] slope, Precision precision) {
        CpuConv.Prepared p = CpuConv.prepare(op, kernel, bias, slope);
        long bytes = CpuMemoryModel.INSTANCE.weightBytes(op);
        return new Charged(op, p, null, memory.reserveWeights(bytes), bytes, memory);
    }

    /**
     * A kernel stored in fp16 or bf16 stays so ({@link CpuConv.Half}, half the memory), and a
     * compact one (int8, fp8, NF4) stays compact; either is expanded to fp32 for each call, a layer
     * at a time. fp32 as above.
     */
    @Override
    public Ops.ConvWeights prepareConv(Op.Conv2d op, TensorData kernel, float[] bias, float[] slope, Precision precision) {
        if (kernel.compact() != null) {
            CpuConv.Prepared shape = CpuConv.prepare(op, new float[(int) kernel.count()], bias, slope);   // padded bias and slopes
            long bytes = CpuMemoryModel.heldBytes(op, kernel);
            return new Charged(op, null, () -> new CpuConv.Prepared(op, CpuConv.pad(op, kernel.data(), shape.coPad()), shape.bias(), shape.slope(), shape.coPad()),
                    memory.reserveWeights(bytes), bytes, memory);
        }
        if (kernel.stored() == Precision.F32) return prepareConv(op, kernel.data(), bias, slope, precision);
        CpuConv.Half h = CpuConv.prepareHalf(op, kernel.halves(), kernel.stored(), bias, slope);
        long bytes = CpuMemoryModel.heldBytes(op, kernel);
        return new Charged(op, null, h::widen, memory.reserveWeights(bytes), bytes, memory);
    }

    /** Prepared weights (fp32, or held narrower and expanded per call) and the ledger charge they hold. */
    record Charged(Op.Conv2d op, CpuConv.Prepared prepared, java.util.function.Supplier<CpuConv.Prepared> expand, Budget node, long bytes,
                   DeviceMemory memory) implements Ops.ConvWeights {

        /** The fp32 weights a convolution runs with: the prepared ones, or the narrow ones expanded now. */
        CpuConv.Prepared weights() {
            return prepared != null ? prepared : expand.get();
        }

        @Override
        public void close() {
            memory.unreserve(node, bytes);
        }
    }

    /**
     * On the CPU the device's memory is the host's: the "copy" keeps the prepared arrays as they
     * are, and restoring charges them to the ledger again (nothing is prepared again).
     */
    @Override
    public HostCopy copyToHost(Ops.ConvWeights[] conv) {
        Charged[] kept = new Charged[conv.length];
        long total = 0;
        for (int i = 0; i < conv.length; i++) {
            if (conv[i] == null) continue;
            if (!(conv[i] instanceof Charged c)) return null;   // weights of a kind this copy does not know
            kept[i] = c;
            total += kept[i].bytes();
        }
        long bytes = total;
        return new HostCopy() {
            @Override
            public long bytes() {
                return bytes;
            }

            @Override
            public Ops.ConvWeights[] restore() {
                Ops.ConvWeights[] out = new Ops.ConvWeights[kept.length];
                try {
                    for (int i = 0; i < kept.length; i++) {
                        Charged k = kept[i];
                        if (k != null) out[i] = new Charged(k.op(), k.prepared(), k.expand(), memory.reserveWeights(k.bytes()), k.bytes(), memory);
                    }
                } catch (RuntimeException e) {
                    for (Ops.ConvWeights w : out) if (w != null) w.close();
                    throw e;
                }
                return out;
            }

            @Override
            public void close() {}
        };
    }

    /** A streamed layer's slot holds the prepared fp32 kernel (see {@link CpuWeightSlots}). */
    @Override
    public long kernelBytes(Op.Conv2d op, TensorData kernel, Precision precision) {
        return CpuWeightSlots.bytes(op);
    }

    /** The CPU's measured rates ({@link dev.headroom.core.residency.StreamSplit.Cost#CPU}). */
    @Override
    public dev.headroom.core.residency.StreamSplit.Cost streamCost(Precision precision) {
        return dev.headroom.core.residency.StreamSplit.Cost.CPU;
    }

    /** One stream: the slots need no binding to a session. */
    @Override
    public dev.headroom.runtime.WeightSlots weightSlots(Precision precision, int count, long slotBytes) {
        return CpuWeightSlots.of(memory, count, slotBytes);
    }

    @Override
    public DeviceModel memoryModel(Precision precision) {
        return CpuMemoryModel.INSTANCE;
    }

    /** Audits the memory: buffers still live are leaks and are named. */
    @Override
    public void close() {
        memory.close();
    }
}
