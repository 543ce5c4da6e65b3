package dev.headroom.runtime.gpu;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED;

import dev.headroom.core.TensorData;
import dev.headroom.core.graph.Op;
import dev.headroom.core.quant.Compact;
import dev.headroom.core.quant.Fp8;
import java.lang.foreign.MemorySegment;

/**
 * How a compact convolution kernel ({@link Compact}: int8, fp8, NF4) lies in device memory: one
 * blob of codes, then scales (or absmax), then the code table (fp8's 256 decoded values, NF4's 16),
 * each part 256-byte aligned, so one copy moves a layer and one kernel launch expands it
 * (expand.cu). The codes stay in the order the model stored them: (kh, kw, cin, cout) for kernels
 * quantized on load, (cout, cin, kh, kw) for a bitsandbytes file ({@code oihw}).
 *
 * @param scheme 0 int8, 1 fp8, 2 NF4 (expand.cu's numbering)
 */
record CompactKernel(Op.Conv2d op, int scheme, boolean oihw, int channels, int blocksize, long scalesAt, long tableAt, long bytes,
                     Compact compact) {

    private static final long ALIGN = 256;

    static CompactKernel of(Op.Conv2d op, TensorData kernel) {
        Compact c = kernel.compact();
        int scheme = switch (c.scheme()) {
            case INT8 -> 0;
            case FP8 -> 1;
            case NF4 -> 2;
        };
        long scalesAt = align(c.codes().length);
        long tableAt = align(scalesAt + 4L * c.scales().length);
        long tableLength = switch (c.scheme()) {
            case INT8 -> 0;
            case FP8 -> 256;
            case NF4 -> c.table().length;
        };
        return new CompactKernel(op, scheme, kernel.storedOihw(), c.channels(), c.blocksize(), scalesAt, tableAt, tableAt + 4 * tableLength, c);
    }

    private static long align(long b) {
        return (b + ALIGN - 1) / ALIGN * ALIGN;
    }

    /** Writes the blob into {@code dst} (at least {@link #bytes} long; host memory, pinned for a copy). */
    void write(MemorySegment dst) {
        dst.asSlice(0, bytes).fill((byte) 0);
        MemorySegment.copy(compact.codes(), 0, dst, JAVA_BYTE, 0, compact.codes().length);
        MemorySegment.copy(compact.scales(), 0, dst, JAVA_FLOAT_UNALIGNED, scalesAt, compact.scales().length);
        float[] table = switch (scheme) {
            case 1 -> fp8Table();
            case 2 -> compact.table();
            default -> new float[0];
        };
        MemorySegment.copy(table, 0, dst, JAVA_FLOAT_UNALIGNED, tableAt, table.length);
    }

    private static float[] fp8Table() {
        float[] t = new float[256];
        for (int c = 0; c < 256; c++) t[c] = Fp8.decode((byte) c);
        return t;
    }

    /** The blob on the host (heap), for an upload. */
    MemorySegment blob() {
        MemorySegment m = MemorySegment.ofArray(new byte[Math.toIntExact(bytes)]);
        write(m);
        return m;
    }
}
