package dev.headroom.runtime.gpu;

import dev.headroom.core.graph.Op;
import dev.headroom.runtime.DeviceBuffer;
import dev.headroom.runtime.memory.DeviceMemory;

/** Weights on the device in KRSC (cout, kh, kw, cin) order; fp32 bias and PReLU slopes. */
final class CudaConvWeights implements RelocatableWeights {
    final Op.Conv2d op;
    final DeviceBuffer kernel, bias, slope;
    private final DeviceMemory alloc;
    /** For weights that are views into one block (a restored host copy): what closing does instead of freeing each buffer. */
    private final Runnable release;

    CudaConvWeights(Op.Conv2d op, DeviceBuffer kernel, DeviceBuffer bias, DeviceBuffer slope, DeviceMemory alloc) {
        this(op, kernel, bias, slope, alloc, null);
    }

    private CudaConvWeights(Op.Conv2d op, DeviceBuffer kernel, DeviceBuffer bias, DeviceBuffer slope, DeviceMemory alloc, Runnable release) {
        this.op = op;
        this.kernel = kernel;
        this.bias = bias;
        this.slope = slope;
        this.alloc = alloc;
        this.release = release;
    }

    @Override
    public DeviceBuffer[] buffers() {
        return new DeviceBuffer[] {kernel, bias, slope};
    }

    @Override
    public CudaConvWeights over(DeviceBuffer[] b, Runnable release) {
        return new CudaConvWeights(op, b[0], b[1], b[2], alloc, release);
    }

    @Override
    public Op.Conv2d op() {
        return op;
    }

    @Override
    public void close() {
        if (release != null) {
            release.run();
            return;
        }
        alloc.free(kernel);
        if (bias != null) alloc.free(bias);
        if (slope != null) alloc.free(slope);
    }
}
