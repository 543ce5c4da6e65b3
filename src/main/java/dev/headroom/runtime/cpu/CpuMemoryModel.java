package dev.headroom.runtime.cpu;

import dev.headroom.core.graph.Node;
import dev.headroom.core.graph.Op;
import dev.headroom.core.plan.DeviceModel;

/**
 * What the CPU backend allocates besides planned activations: the zero-padded input of each
 * convolution while it runs ({@link CpuConv}), and the prepared weights, which are plain heap arrays
 * but charged to the ledger all the same. The input image stays a plain heap array.
 */
public final class CpuMemoryModel implements DeviceModel {
    public static final CpuMemoryModel INSTANCE = new CpuMemoryModel();

    @Override
    public int elementBytes() {
        return Float.BYTES;
    }

    /** The prepared kernel, bias and slopes ({@link CpuConv#prepare}: output channels padded to the vector length), charged to the ledger. */
    @Override
    public long weightBytes(Op.Conv2d conv) {
        long coPad = (conv.cout() + CpuConv.VL - 1) / CpuConv.VL * CpuConv.VL;
        return ((long) conv.kh() * conv.kw() * conv.cin() + 2) * coPad * Float.BYTES;
    }

    /** Kernels stay as stored on the CPU (16-bit, or compact) and are expanded per call: {@link #heldBytes}. */
    @Override
    public DeviceModel holding(dev.headroom.core.Weights weights) {
        return withWeightBytes(c -> weights.has(c.weight()) ? heldBytes(c, weights.get(c.weight())) : weightBytes(c));
    }

    /**
     * What {@link CpuDevice} charges for a convolution whose kernel is held as {@code kernel} is:
     * fp32 as {@link #weightBytes}; 16-bit, the kernel in 16 bits with output channels padded to
     * the vector length; compact (int8, fp8, NF4), its codes and scales; and the padded fp32 bias
     * and slopes.
     */
    public static long heldBytes(Op.Conv2d conv, dev.headroom.core.TensorData kernel) {
        long coPad = (conv.cout() + CpuConv.VL - 1) / CpuConv.VL * CpuConv.VL;
        if (kernel.compact() != null) return kernel.storedBytes() + 2L * coPad * Float.BYTES;
        if (kernel.stored() == dev.headroom.core.Precision.F32) return INSTANCE.weightBytes(conv);
        return (long) conv.kh() * conv.kw() * conv.cin() * coPad * 2 + 2L * coPad * Float.BYTES;
    }

    @Override
    public long inputBytes(int n, int h, int w, int c) {
        return 0;
    }

    @Override
    public long scratch(Node node, int[] in, int[] out, boolean inDense, boolean outDense) {
        if (!(node.op() instanceof Op.Conv2d c)) return 0;
        return DeviceModel.align((long) in[0] * (out[1] + c.kh() - 1) * (out[2] + c.kw() - 1) * c.cin() * Float.BYTES);
    }

    @Override
    public long persistent(Node node, int[] in, int[] out) {
        return 0;
    }
}
