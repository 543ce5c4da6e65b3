package dev.headroom.runtime.cpu;

import dev.headroom.core.Precision;
import dev.headroom.core.graph.Act;
import dev.headroom.core.graph.ChannelOrder;
import dev.headroom.core.graph.Op;
import dev.headroom.runtime.Device;
import dev.headroom.runtime.Session;
import dev.headroom.runtime.Tensor;
import dev.headroom.runtime.DeviceBuffer;
import dev.headroom.runtime.memory.DeviceMemory;
import dev.headroom.runtime.memory.MemoryOptions;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * A session on the CPU backend ({@link CpuDevice}): fp32 NHWC on the Java heap, every op spread
 * over the cores by output row. Convolution is {@link CpuConv}; the memory-bound ops are plain
 * loops over a pixel's channels, which the JIT vectorises.
 *
 * <p>Activations and workspaces come from the device's {@link DeviceMemory}. {@code new CpuOps()}
 * is a session on a device of its own, closed with it (one job, as the command line runs); a
 * server opens sessions of one shared {@link CpuDevice}.
 */
public final class CpuOps implements Session {
    private final CpuDevice device;
    private final HeapSegments heap;
    private final DeviceMemory memory;
    private final boolean ownsDevice;

    /** A session on a device of its own (closed with it). */
    public CpuOps() {
        this(MemoryOptions.DEFAULT);
    }

    public CpuOps(MemoryOptions options) {
        this(new CpuDevice(options), true);
    }

    CpuOps(CpuDevice device, boolean ownsDevice) {
        this.device = device;
        this.heap = device.heap;
        this.memory = device.memory();
        this.ownsDevice = ownsDevice;
    }

    @Override
    public Device device() {
        return device;
    }

    @Override
    public Precision precision() {
        return Precision.F32;
    }

    @Override
    public DeviceMemory memory() {
        return memory;
    }

    @Override
    public Tensor allocate(int n, int h, int w, int c) {
        DeviceBuffer b = memory.allocate((long) n * h * w * c * Float.BYTES);
        Map.Entry<Long, float[]> seg = heap.at(b.address());
        return Tensor.pooled(seg.getValue(), (int) ((b.address() - seg.getKey()) / Float.BYTES), b, n, h, w, c);
    }

    @Override
    public void release(Tensor t) {
        if (t.device != null) memory.free(t.device);
    }

    @Override
    public dev.headroom.core.plan.DeviceModel memoryModel() {
        return CpuMemoryModel.INSTANCE;
    }

    @Override
    public Tensor view(DeviceBuffer arena, long byteOffset, int n, int h, int w, int c) {
        Map.Entry<Long, float[]> seg = heap.at(arena.address());
        long at = arena.address() + byteOffset;
        return Tensor.pooled(seg.getValue(), (int) ((at - seg.getKey()) / Float.BYTES), new dev.headroom.runtime.ArenaView(at, (long) n * h * w * c * Float.BYTES), n, h, w, c);
    }

    /** A plain heap copy: the pooled buffer goes back to the allocator while the caller still reads the result. */
    @Override
    public Tensor download(Tensor t) {
        return t.device == null ? t : Tensor.wrap(t.toArray(), t.n, t.h, t.w, t.c);
    }

    @Override
    public ConvWeights prepareConv(Op.Conv2d op, float[] kernel, float[] bias, float[] slope) {
        return device.prepareConv(op, kernel, bias, slope, Precision.F32);
    }

    /** 16-bit kernels stay 16-bit (widened per call): see {@link CpuDevice#prepareConv(Op.Conv2d, dev.headroom.core.TensorData, float[], float[], Precision)}. */
    @Override
    public ConvWeights prepareConv(Op.Conv2d op, dev.headroom.core.TensorData kernel, float[] bias, float[] slope) {
        return device.prepareConv(op, kernel, bias, slope, Precision.F32);
    }

    /** A streamed layer's slot holds the prepared fp32 kernel (see {@link CpuWeightSlots}). */
    @Override
    public long kernelBytes(Op.Conv2d op, dev.headroom.core.TensorData kernel) {
        return CpuWeightSlots.bytes(op);
    }

    @Override
    public dev.headroom.runtime.WeightSlots weightSlots(int count, long slotBytes) {
        return CpuWeightSlots.of(memory, count, slotBytes);
    }

    @Override
    public void conv2d(Tensor in, ConvWeights w, Tensor residual, Tensor out) {
        CpuConv.Prepared p = w instanceof CpuDevice.Charged c ? c.weights() : (CpuConv.Prepared) w;
        long elements = CpuConv.paddedElements(in, p, out);
        DeviceBuffer b;
        try (var scope = memory.tag("workspace", null)) {
            b = memory.allocate(elements * Float.BYTES);
        }
        try {
            Map.Entry<Long, float[]> seg = heap.at(b.address());
            CpuConv.run(in, p, residual, out, seg.getValue(), (int) ((b.address() - seg.getKey()) / Float.BYTES));
        } finally {
            memory.free(b);
        }
    }

    /** Nothing of its own to free; a session on a device of its own closes the device, which audits the memory for leaks. */
    @Override
    public void close() {
        if (ownsDevice) device.close();
    }

    /** Calls {@code body(b, y)} for every output row, in parallel. */
    private interface RowBody {
        void row(int b, int y);
    }

    private static void rows(Tensor out, RowBody body) {
        IntStream.range(0, out.n * out.h).parallel().forEach(r -> body.row(r / out.h, r % out.h));
    }

    @Override
    public void activation(Tensor in, Act act, float[] slope, Tensor out) {
        int c = out.c;
        rows(out, (b, y) -> {
            for (int x = 0; x < out.w; x++) {
                int i = in.index(b, y, x), o = out.index(b, y, x);
                switch (act.kind()) {
                    case NONE -> System.arraycopy(in.data, i, out.data, o, c);
                    case RELU -> { for (int ch = 0; ch < c; ch++) out.data[o + ch] = Math.max(in.data[i + ch], 0f); }
                    case LEAKY_RELU -> {
                        float s = act.slope();
                        for (int ch = 0; ch < c; ch++) { float v = in.data[i + ch]; out.data[o + ch] = v >= 0 ? v : v * s; }
                    }
                    case PRELU -> {
                        for (int ch = 0; ch < c; ch++) { float v = in.data[i + ch]; out.data[o + ch] = v >= 0 ? v : v * slope[ch]; }
                    }
                    case SILU -> { for (int ch = 0; ch < c; ch++) out.data[o + ch] = CpuVaeOps.silu(in.data[i + ch]); }
                }
            }
        });
    }

    @Override
    public void add(Tensor[] ins, Tensor out) {
        int c = out.c;
        rows(out, (b, y) -> {
            for (int x = 0; x < out.w; x++) {
                int o = out.index(b, y, x);
                Tensor first = ins[0];
                int i0 = first.index(b, y, x);
                for (int ch = 0; ch < c; ch++) out.data[o + ch] = first.data[i0 + ch];
                for (int k = 1; k < ins.length; k++) {
                    Tensor t = ins[k];
                    int ik = t.index(b, y, x);
                    for (int ch = 0; ch < c; ch++) out.data[o + ch] += t.data[ik + ch];
                }
            }
        });
    }

    @Override
    public void scale(Tensor in, float factor, Tensor out) {
        int c = out.c;
        rows(out, (b, y) -> {
            for (int x = 0; x < out.w; x++) {
                int i = in.index(b, y, x), o = out.index(b, y, x);
                for (int ch = 0; ch < c; ch++) out.data[o + ch] = factor * in.data[i + ch];
            }
        });
    }

    @Override
    public void upsampleNearest(Tensor in, int r, Tensor out) {
        int c = out.c;
        rows(out, (b, y) -> {
            for (int x = 0; x < out.w; x++) System.arraycopy(in.data, in.index(b, y / r, x / r), out.data, out.index(b, y, x), c);
        });
    }

    @Override
    public void pixelShuffle(Tensor in, int r, ChannelOrder order, Tensor out) {
        int c = out.c;
        rows(out, (b, y) -> {
            int i = y % r;
            for (int x = 0; x < out.w; x++) {
                int j = x % r;
                int src = in.index(b, y / r, x / r), dst = out.index(b, y, x);
                if (order == ChannelOrder.TF) {
                    // DCR: the c output channels are contiguous in the input
                    System.arraycopy(in.data, src + (i * r + j) * c, out.data, dst, c);
                } else {
                    for (int ch = 0; ch < c; ch++) out.data[dst + ch] = in.data[src + ch * r * r + i * r + j];
                }
            }
        });
    }

    @Override
    public void pixelUnshuffle(Tensor in, int r, ChannelOrder order, Tensor out) {
        int c = in.c;
        rows(out, (b, y) -> {
            for (int x = 0; x < out.w; x++) {
                int dst = out.index(b, y, x);
                for (int i = 0; i < r; i++)
                    for (int j = 0; j < r; j++) {
                        int src = in.index(b, y * r + i, x * r + j);
                        for (int ch = 0; ch < c; ch++) out.data[dst + order.sourceChannel(ch, i, j, r, c)] = in.data[src + ch];
                    }
            }
        });
    }

    @Override
    public void groupNormStats(Tensor in, int groups, double[] acc) {
        CpuVaeOps.groupNormStats(in, groups, acc);
    }

    @Override
    public void groupNormApply(Tensor in, Op.GroupNorm op, float[] meanRstd, float[] gamma, float[] beta, Tensor out) {
        CpuVaeOps.groupNormApply(in, op, meanRstd, gamma, beta, out);
    }

    @Override
    public void stridedConv(Tensor in, Op.StridedConv op, float[] kernel, float[] bias, Tensor out) {
        CpuVaeOps.stridedConv(in, op, kernel, bias, out);
    }

    @Override
    public void attention(Tensor q, Tensor k, Tensor v, float scale, Tensor out) {
        CpuVaeOps.attention(q, k, v, scale, out);
    }

    @Override
    public void copy(Tensor in, Tensor out) {
        rows(out, (b, y) -> {
            for (int x = 0; x < out.w; x++) System.arraycopy(in.data, in.index(b, y, x), out.data, out.index(b, y, x), out.c);
        });
    }
}
