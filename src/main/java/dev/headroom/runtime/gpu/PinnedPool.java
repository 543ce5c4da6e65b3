package dev.headroom.runtime.gpu;

import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.LongFunction;

/**
 * Pinned host buffers kept for reuse by size: an exact tiled run ({@link PinnedRows}) stores the
 * bands of the intermediates the device has no room for in pinned chunks of one size, gives a
 * node's chunks back once its last reader has run, and the next nodes take them again. Pinning
 * gigabytes costs far more than copying them, so freed buffers wait here, up to {@code maxIdle}
 * bytes, instead of going back to the driver. Buffers are handed out whole (exact size), used by
 * one session's thread.
 */
final class PinnedPool implements AutoCloseable {
    private final LongFunction<MemorySegment> pin;
    private final Consumer<MemorySegment> unpin;
    private final long maxIdle;
    private final Map<Long, ArrayDeque<MemorySegment>> idle = new HashMap<>();
    private long idleBytes, pinnedBytes, peakBytes, pins;

    /** @param pin allocates {@code bytes} of pinned memory; @param unpin gives a buffer back to the driver */
    PinnedPool(LongFunction<MemorySegment> pin, Consumer<MemorySegment> unpin, long maxIdle) {
        this.pin = pin;
        this.unpin = unpin;
        this.maxIdle = maxIdle;
    }

    /** A buffer of exactly {@code bytes}: an idle one of that size, or a newly pinned one. */
    MemorySegment take(long bytes) {
        ArrayDeque<MemorySegment> q = idle.get(bytes);
        if (q != null && !q.isEmpty()) {
            idleBytes -= bytes;
            return q.pop();
        }
        MemorySegment s = pin.apply(bytes);
        pins++;
        pinnedBytes += bytes;
        peakBytes = Math.max(peakBytes, pinnedBytes);
        return s;
    }

    /** Takes back a buffer {@link #take} gave; kept for reuse while the idle ones stay within the limit. */
    void give(MemorySegment s) {
        long bytes = s.byteSize();
        if (idleBytes + bytes > maxIdle) {
            release(s);
            return;
        }
        idle.computeIfAbsent(bytes, k -> new ArrayDeque<>()).push(s);
        idleBytes += bytes;
    }

    private void release(MemorySegment s) {
        pinnedBytes -= s.byteSize();
        unpin.accept(s);
    }

    /** How many buffers were pinned so far (reuse keeps this low). */
    long pins() {
        return pins;
    }

    /** Bytes pinned now, idle or in use. */
    long pinnedBytes() {
        return pinnedBytes;
    }

    /** The most bytes pinned at once so far. */
    long peakBytes() {
        return peakBytes;
    }

    long idleBytes() {
        return idleBytes;
    }

    /** Unpins the idle buffers (buffers still in use are their owners' to give back first). */
    @Override
    public void close() {
        for (ArrayDeque<MemorySegment> q : idle.values()) for (MemorySegment s : q) release(s);
        idle.clear();
        idleBytes = 0;
    }
}
