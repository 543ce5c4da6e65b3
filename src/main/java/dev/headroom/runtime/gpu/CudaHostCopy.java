package dev.headroom.runtime.gpu;

import dev.headroom.cuda.CudaException;
import dev.headroom.cuda.Driver;
import dev.headroom.runtime.ArenaView;
import dev.headroom.runtime.DeviceBuffer;
import dev.headroom.runtime.HostCopy;
import dev.headroom.runtime.Ops;
import dev.headroom.runtime.memory.DeviceMemory;
import java.lang.foreign.MemorySegment;

/**
 * A model's convolution weights in one block of pinned host memory, exactly as they lie on the
 * device (KRSC kernels in the session precision or compact blobs, fp32 bias and slopes), each buffer at a 256-byte
 * aligned offset. Made with one device-to-host copy per buffer on the device's loader stream;
 * {@link #restore} allocates one device block of the same layout and fills it with a single
 * host-to-device copy, so a reload runs at the bus's rate however many layers the model has. The
 * restored weights are views into that block, which is freed when the last of them closes.
 */
final class CudaHostCopy implements HostCopy {
    /** Offsets are multiples of this, as the driver's own allocations are: cuDNN and the 16-byte kernels need aligned pointers. */
    private static final long ALIGN = 256;

    private final CudaDevice device;
    private final Driver cu;
    /** The weights copied, for {@link RelocatableWeights#over}; their buffers are not read again. */
    private final RelocatableWeights[] layers;
    /** Per layer, per buffer ({@link RelocatableWeights#buffers} order): offset in the block, or -1 where absent. */
    private final long[][] offsets;
    private final long[][] sizes;
    private final long total;
    private MemorySegment pinned;

    private CudaHostCopy(CudaDevice device, Driver cu, RelocatableWeights[] layers, long[][] offsets, long[][] sizes, long total) {
        this.device = device;
        this.cu = cu;
        this.layers = layers;
        this.offsets = offsets;
        this.sizes = sizes;
        this.total = total;
    }

    /**
     * A pinned copy of {@code conv} (read on the loader's stream, complete on return), or null
     * when pinned memory is refused or a layer's weights are not {@link RelocatableWeights}.
     */
    static CudaHostCopy of(CudaDevice device, Driver cu, Ops.ConvWeights[] conv) {
        RelocatableWeights[] layers = new RelocatableWeights[conv.length];
        long[][] offsets = new long[conv.length][], sizes = new long[conv.length][];
        long at = 0;
        for (int i = 0; i < conv.length; i++) {
            if (conv[i] == null) continue;
            if (!(conv[i] instanceof RelocatableWeights w)) return null;   // weights of a kind this copy does not know how to save
            layers[i] = w;
            DeviceBuffer[] b = layers[i].buffers();
            offsets[i] = new long[b.length];
            sizes[i] = new long[b.length];
            for (int j = 0; j < b.length; j++) {
                offsets[i][j] = b[j] == null ? -1 : at;
                sizes[i][j] = b[j] == null ? 0 : b[j].bytes();
                at = align(at + sizes[i][j]);
            }
        }
        CudaHostCopy copy = new CudaHostCopy(device, cu, layers, offsets, sizes, Math.max(at, ALIGN));
        device.bind();
        try {
            copy.pinned = cu.memAllocHost(copy.total);
        } catch (CudaException e) {
            return null;   // pinned memory refused (the host is short of it): no host copy, the caller goes back to the file
        }
        try {
            device.onLoadStream(stream -> {
                for (int i = 0; i < layers.length; i++) {
                    if (layers[i] == null) continue;
                    DeviceBuffer[] b = layers[i].buffers();
                    for (int j = 0; j < b.length; j++) {
                        if (b[j] != null) cu.copyDtoHAsync(copy.pinned.asSlice(offsets[i][j], sizes[i][j]), b[j].address(), sizes[i][j], stream);
                    }
                }
                return null;
            });
        } catch (RuntimeException e) {
            copy.close();
            throw e;
        }
        return copy;
    }

    private static long align(long at) {
        return (at + ALIGN - 1) / ALIGN * ALIGN;
    }

    @Override
    public long bytes() {
        return total;
    }

    @Override
    public Ops.ConvWeights[] restore() {
        if (pinned == null) throw new IllegalStateException("host copy of " + total + " bytes restored after it was closed");
        DeviceMemory memory = device.memory();
        DeviceBuffer block = device.onLoadStream(stream -> memory.allocate(total, stream.address()));
        try {
            device.onLoadStream(stream -> {
                cu.copyHtoDAsync(block.address(), pinned, total, stream);
                return null;
            });
        } catch (RuntimeException e) {
            memory.free(block);
            throw e;
        }
        int count = 0;
        for (RelocatableWeights w : layers) if (w != null) count++;
        int[] live = {count};
        Runnable release = () -> {
            synchronized (live) {
                if (--live[0] > 0) return;
            }
            memory.free(block);
        };
        Ops.ConvWeights[] out = new Ops.ConvWeights[layers.length];
        for (int i = 0; i < layers.length; i++) {
            if (layers[i] == null) continue;
            DeviceBuffer[] views = new DeviceBuffer[offsets[i].length];
            for (int j = 0; j < views.length; j++) {
                if (offsets[i][j] >= 0) views[j] = new ArenaView(block.address() + offsets[i][j], sizes[i][j]);
            }
            out[i] = layers[i].over(views, release);
        }
        if (count == 0) memory.free(block);
        return out;
    }

    /** Frees the pinned memory (a copy being restored from must not be closed). */
    @Override
    public void close() {
        if (pinned == null) return;
        MemorySegment p = pinned;
        pinned = null;
        device.bind();
        cu.memFreeHost(p);
    }
}
