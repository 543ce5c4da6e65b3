package dev.headroom.models.image;

import java.util.ArrayDeque;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

/**
 * Buffers for rows handed to the encoding threads, shared by every writer of the process, within a
 * budget of bytes. A writer's caller copies a piece's samples into one and goes on (a GPU job goes
 * back to its tiles) while the piece waits for a thread; only when the pieces waiting or being
 * filtered hold the whole budget does the caller wait, for the encoders to catch up. Before this
 * the caller waited for a thread to take every piece of its band, and that thread was behind every
 * other writer's pieces in the pool's queue: several jobs at once stalled each other's tiles while
 * the host's cores were half idle.
 *
 * <p>The budget counts the bytes of the buffers handed out (a wide image's larger pieces count as
 * what they are), and callers wait in turn: a wide piece is not passed over by narrow ones. A buffer
 * is given back as soon as its rows are filtered; given-back buffers are kept for the next pieces
 * up to half the budget (the rest go to the collector), so a stream of images makes little garbage
 * (a 1 MiB piece is a humongous object for G1 in a heap of a few GiB). All it holds is at most the
 * budget and that half again.
 */
final class EncodeBuffers {
    private final int budget;
    private final Semaphore free;
    /** Given-back buffers, most recent first. */
    private final ArrayDeque<byte[]> kept = new ArrayDeque<>();
    private long keptBytes;

    EncodeBuffers(int budgetBytes) {
        if (budgetBytes < 1) throw new IllegalArgumentException("an encode buffer budget of " + budgetBytes + " bytes");
        this.budget = budgetBytes;
        this.free = new Semaphore(budgetBytes, true);   // fair, and taken only in turn (see take)
    }

    /**
     * The process's: eight 1 MiB pieces per encoding thread (a GPU's band is sixteen), at least 64
     * MiB and at most 512 MiB, and never more than an eighth of the heap.
     */
    static EncodeBuffers forProcess(int threads, int pieceBytes) {
        long want = Math.clamp(8L * threads * pieceBytes, 64L << 20, 512L << 20);
        long heap = Runtime.getRuntime().maxMemory() / 8;
        return new EncodeBuffers((int) Math.max(4L * pieceBytes, Math.min(want, heap)));
    }

    /**
     * A buffer of at least {@code bytes} (a kept one of at most twice that, else a new one of just
     * that), its length charged to the budget: waits, in turn, while the budget is taken. A piece
     * bigger than the whole budget takes all of it. Give it back with {@link #give}.
     */
    byte[] take(int bytes) {
        byte[] b = keptFor(bytes);
        int charge = charge(b != null ? b.length : bytes);
        acquire(charge);
        if (b != null) return b;
        try {
            return new byte[bytes];
        } catch (Throwable t) {
            free.release(charge);   // the allocation failed (OutOfMemoryError): the charge goes back
            throw t;
        }
    }

    /** Takes {@code charge} bytes of the budget in turn, waiting as long as it takes; an interrupt is kept for the caller's next check. */
    private void acquire(int charge) {
        boolean interrupted = false;
        try {
            // a timed tryAcquire keeps the semaphore's order (the untimed one would pass callers already waiting)
            if (free.tryAcquire(charge, 0, TimeUnit.NANOSECONDS)) return;
        } catch (InterruptedException e) {
            interrupted = true;
        }
        free.acquireUninterruptibly(charge);   // the encoding threads give back without fail (PngWriter.encode)
        if (interrupted) Thread.currentThread().interrupt();
    }

    /** Gives back a buffer {@link #take} returned: kept for the next pieces, or left to the collector. */
    void give(byte[] buffer) {
        synchronized (this) {
            if (keptBytes + buffer.length <= budget / 2) {
                kept.push(buffer);
                keptBytes += buffer.length;
            }
        }
        free.release(charge(buffer.length));
    }

    /** A kept buffer of {@code bytes} to twice that, taken out of the kept ones; null where none is. */
    private synchronized byte[] keptFor(int bytes) {
        for (var it = kept.iterator(); it.hasNext(); ) {
            byte[] b = it.next();
            if (b.length >= bytes && b.length / 2 <= bytes) {
                it.remove();
                keptBytes -= b.length;
                return b;
            }
        }
        return null;
    }

    private int charge(int bytes) {
        return Math.min(bytes, budget);
    }

    /** Bytes of the budget that buffers handed out hold now (taken, not given back). */
    int inUse() {
        return budget - free.availablePermits();
    }

    int budget() {
        return budget;
    }
}
