package dev.headroom.runtime.gpu;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import dev.headroom.core.Precision;
import dev.headroom.cuda.Driver;
import dev.headroom.runtime.Ops;
import dev.headroom.runtime.Tensor;
import java.lang.foreign.MemorySegment;

/**
 * Copies between Java floats and device memory in a storage precision, queued on one stream
 * through pinned slots ({@link PinnedSlots}): floats are converted into a slot and the copy queued
 * behind the stream's work; a copy home is queued into a slot and converted once its event has
 * completed. Nothing here waits for more than its own copies: not the device, not the legacy
 * stream. One owner thread at a time (a session's, or the device's weight loader under its lock).
 */
final class CudaCopies implements AutoCloseable {
    private final Driver cu;
    private final MemorySegment stream;
    private final PinnedSlots slots;
    private short[] halfBits = new short[0];

    CudaCopies(Driver cu, MemorySegment stream) {
        this.cu = cu;
        this.stream = stream;
        this.slots = new PinnedSlots(cu);
    }

    /**
     * Copies floats to {@code dst} on the device, converted to {@code as}: converted into a
     * pinned slot, then queued on the stream, so the call returns before the copy runs and the
     * device keeps working on what was issued before.
     */
    void copyIn(float[] src, long dst, Precision as) {
        long bytes = (long) src.length * as.bytes;
        PinnedSlots.Slot slot = slots.take(bytes);
        try {
            MemorySegment staging = slot.memory();
            if (as == Precision.F32) {
                MemorySegment.copy(src, 0, staging, JAVA_FLOAT, 0, src.length);
            } else {
                short[] bits = shorts(src.length);
                if (as == Precision.F16) {
                    for (int i = 0; i < src.length; i++) bits[i] = Float.floatToFloat16(src[i]);
                } else {
                    for (int i = 0; i < src.length; i++) bits[i] = as.toBits(src[i]);
                }
                MemorySegment.copy(bits, 0, staging, JAVA_SHORT, 0, src.length);
            }
            cu.copyHtoDAsync(dst, staging, bytes, stream);
            slots.queued(slot, stream);
        } finally {
            slots.giveBack(slot);
        }
    }

    /** Copies {@code bytes} of raw values (already in the storage precision) to {@code dst}, queued. */
    void copyIn(MemorySegment src, long dst, long bytes) {
        PinnedSlots.Slot slot = slots.take(bytes);
        try {
            MemorySegment.copy(src, 0, slot.memory(), 0, bytes);
            cu.copyHtoDAsync(dst, slot.memory(), bytes, stream);
            slots.queued(slot, stream);
        } finally {
            slots.giveBack(slot);
        }
    }

    /** A host copy of a device tensor, waiting for this stream's work up to the copy (and nothing else). */
    Tensor download(Tensor t) {
        return downloadLater(t).get();
    }

    /**
     * Queues the copy of {@code t} into a pinned slot behind the work issued so far and returns at
     * once; {@link Ops.Download#get} waits for that copy alone and converts the slot's values. The
     * device buffer may be reused as soon as this returns: later work on this stream runs after
     * the copy.
     */
    Ops.Download downloadLater(Tensor t) {
        long bytes = hostBytes(t);
        PinnedSlots.Slot slot = slots.take(bytes);
        try {
            cu.copyDtoHAsync(slot.memory(), t.device.address(), bytes, stream);
            slots.queued(slot, stream);
        } catch (RuntimeException e) {
            slots.giveBack(slot);
            throw e;
        }
        return new Ops.Download() {
            private Tensor done;

            @Override
            public Tensor get() {
                if (done != null) return done;
                try {
                    Tensor h = Tensor.allocate(t.n, t.h, t.w, t.c);   // while the copy may still be on its way: zeroing 50 MB costs as much as converting it
                    slots.await(slot);
                    toFloats(slot.memory(), t.precision, h.data, h.data.length);
                    done = h;
                } finally {
                    slots.giveBack(slot);
                }
                return done;
            }
        };
    }

    /** Bytes of a device tensor that can be copied home in one piece (a channel slice cannot). */
    private static long hostBytes(Tensor t) {
        if (!t.dense()) throw new IllegalArgumentException("download of a channel slice " + t);
        return (long) t.n * t.h * t.w * t.c * t.precision.bytes;
    }

    /** Values of {@code as} in {@code from} to floats in {@code out}. */
    private void toFloats(MemorySegment from, Precision as, float[] out, int count) {
        if (as == Precision.F32) {
            MemorySegment.copy(from, JAVA_FLOAT, 0, out, 0, count);
            return;
        }
        // one bulk copy, then a plain loop over arrays, which C2 vectorises (fp16: vcvtph2ps)
        short[] bits = shorts(count);
        MemorySegment.copy(from, JAVA_SHORT, 0, bits, 0, count);
        if (as == Precision.F16) {
            for (int i = 0; i < count; i++) out[i] = Float.float16ToFloat(bits[i]);
        } else {
            for (int i = 0; i < count; i++) out[i] = Float.intBitsToFloat(bits[i] << 16);
        }
    }

    /** A reused array for 16-bit patterns on their way through the staging buffer. */
    private short[] shorts(int count) {
        if (halfBits.length < count) halfBits = new short[count];
        return halfBits;
    }

    /** Frees the pinned slots (call once the stream is idle). */
    @Override
    public void close() {
        slots.close();
    }
}
