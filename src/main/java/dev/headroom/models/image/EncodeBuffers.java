package dev.headroom.models.image;

import java.util.ArrayDeque;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Buffers for rows handed to the encoding threads, shared by every writer of the process, within a
 * budget of bytes. A writer's caller copies a piece's samples into one and goes on (a GPU job goes
 * back to its tiles) while the piece waits for a thread; only when the pieces waiting or being
 * filtered hold the whole budget does the caller wait, for the encoders to catch up. Before this
 * the caller waited for a thread to take every piece of its band, and that thread was behind every
 * other writer's pieces in the pool's queue: several jobs at once stalled each other's tiles while
 * the host's cores were half idle.
 *
 * <p>The budget is in bytes, not buffers, so a wide image's larger pieces count as what they are;
 * a buffer is given back as soon as its rows are filtered. Given-back buffers are kept for the next
 * piece up to half the budget (the rest go to the collector), so a stream of images makes no
 * garbage per piece.
 */
final class EncodeBuffers {
    /** Buffers are made at least this big, so that pieces of most widths can take any kept one. */
    private final int minBuffer;
    private final int budget;
    private final Semaphore free;
    private final ArrayDeque<byte[]> kept = new ArrayDeque<>();
    private long keptBytes;
    private final AtomicLong waitedNanos = new AtomicLong();

    EncodeBuffers(int budgetBytes, int minBuffer) {
        if (budgetBytes < 1) throw new IllegalArgumentException("an encode buffer budget of " + budgetBytes + " bytes");
        this.budget = budgetBytes;
        this.minBuffer = minBuffer;
        this.free = new Semaphore(budgetBytes, true);   // fair: a wide piece is not passed over by narrow ones forever
    }

    /**
     * The process's: eight 1 MiB pieces per encoding thread (a GPU's band is sixteen), at least 64
     * MiB and at most 512 MiB, and never more than an eighth of the heap.
     */
    static EncodeBuffers forProcess(int threads, int pieceBytes) {
        long want = Math.clamp(8L * threads * pieceBytes, 64L << 20, 512L << 20);
        long heap = Runtime.getRuntime().maxMemory() / 8;
        int budget = (int) Math.max(4L * pieceBytes, Math.min(want, heap));
        return new EncodeBuffers(budget, pieceBytes + (64 << 10));
    }

    /**
     * A buffer of at least {@code bytes}, charged to the budget: waits while the budget is taken. A
     * piece bigger than the whole budget takes all of it.
     */
    byte[] take(int bytes) {
        int charge = charge(bytes);
        if (!free.tryAcquire(charge)) {
            long t0 = System.nanoTime();
            free.acquireUninterruptibly(charge);   // the encoding threads give back without fail (see give)
            waitedNanos.addAndGet(System.nanoTime() - t0);
        }
        synchronized (this) {
            byte[] b = kept.poll();
            if (b != null) {
                keptBytes -= b.length;
                if (b.length >= bytes) return b;
            }
        }
        return new byte[Math.max(bytes, minBuffer)];
    }

    /** Gives back a buffer {@link #take} returned for {@code bytes}: kept for the next piece, or left to the collector. */
    void give(byte[] buffer, int bytes) {
        synchronized (this) {
            if (keptBytes + buffer.length <= budget / 2) {
                kept.push(buffer);
                keptBytes += buffer.length;
            }
        }
        free.release(charge(bytes));
    }

    private int charge(int bytes) {
        return Math.min(bytes, budget);
    }

    /** Bytes of the budget that pieces hold now (taken, not given back). */
    int inUse() {
        return budget - free.availablePermits();
    }

    int budget() {
        return budget;
    }

    /** Time callers spent waiting for the budget, over the process's life: the encoders were behind for that long. */
    long waitedNanos() {
        return waitedNanos.get();
    }
}
