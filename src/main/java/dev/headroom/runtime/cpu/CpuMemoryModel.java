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
