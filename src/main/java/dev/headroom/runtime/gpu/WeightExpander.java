package dev.headroom.runtime.gpu;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import dev.headroom.core.Precision;
import dev.headroom.core.graph.Op;
import dev.headroom.cuda.Driver;
import dev.headroom.runtime.ArenaView;
import dev.headroom.runtime.DeviceBuffer;
import dev.headroom.runtime.memory.DeviceMemory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * A session's expansion of compact kernels (expand.cu): each {@link CompactWeights} is expanded
 * on the session's stream into one scratch buffer in the compute precision, KRSC, right before
 * its convolution reads it; stream order keeps the next expansion from overwriting it too early.
 * The scratch grows to the largest layer met (charged to the workspace) and stays, so a recorded
 * pass replays with the same pointers; growing it invalidates recordings.
 */
final class WeightExpander implements AutoCloseable {
    private final Driver cu;
    private final MemorySegment stream;
    private final long streamId;
    private final DeviceMemory alloc;
    private final Precision precision;
    private final MemorySegment fn;
    private final CudaRecorder recorder;
    private DeviceBuffer scratch;
    private long expanded;

    WeightExpander(Driver cu, MemorySegment stream, DeviceMemory alloc, Precision precision, MemorySegment fn, CudaRecorder recorder) {
        this.cu = cu;
        this.stream = stream;
        this.streamId = stream.address();
        this.alloc = alloc;
        this.precision = precision;
        this.fn = fn;
        this.recorder = recorder;
    }

    /** {@code w}'s kernel expanded now (queued) into the scratch: weights for the next convolution only. */
    CudaConvWeights expand(CompactWeights w) {
        Op.Conv2d op = w.op();
        long values = (long) op.kh() * op.kw() * op.cin() * op.cout(), bytes = values * precision.bytes;
        if (scratch == null || scratch.bytes() < bytes) {
            recorder.notWhileCapturing("grow the weight expansion buffer to " + bytes + " bytes");
            if (scratch != null) {
                recorder.invalidate("the weight expansion buffer grows");
                alloc.free(scratch);
                scratch = null;
            }
            try (var scope = alloc.tag("workspace", "weight expansion")) {
                scratch = alloc.allocate(bytes, streamId);
            }
        }
        CompactKernel k = w.layout;
        long base = w.blob.address();
        try (Arena a = Arena.ofConfined()) {
            Object[] args = {base, base + k.scalesAt(), base + k.tableAt(), k.scheme(), k.oihw() ? 1 : 0, Math.max(k.channels(), 1),
                    Math.max(k.blocksize(), 1), op.kh(), op.kw(), op.cin(), op.cout(), scratch.address()};
            MemorySegment params = a.allocate(ADDRESS, args.length);
            for (int i = 0; i < args.length; i++) {
                params.setAtIndex(ADDRESS, i, args[i] instanceof Long l ? a.allocateFrom(JAVA_LONG, l) : a.allocateFrom(JAVA_INT, (Integer) args[i]));
            }
            int blocks = (int) Math.min((values + 255) / 256, 4096);
            cu.launch(fn, blocks, 1, 1, 256, 1, 1, 0, stream, params);
        }
        expanded += values;
        return new CudaConvWeights(op, new ArenaView(scratch.address(), bytes), w.bias, w.slope, alloc);
    }

    /** Values expanded so far. */
    long expanded() {
        return expanded;
    }

    /** The scratch's current address and size, for tests that read what was expanded. */
    DeviceBuffer scratch() {
        return scratch;
    }

    @Override
    public void close() {
        if (scratch != null) alloc.free(scratch);
        scratch = null;
    }
}
