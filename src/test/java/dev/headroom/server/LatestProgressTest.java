package dev.headroom.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class LatestProgressTest {

    /** A store write in progress (blocked here on a latch) does not hold up the job's thread noting its next tiles. */
    @Test
    void noteDoesNotWaitForAWriteInProgress() throws Exception {
        LatestProgress p = new LatestProgress();
        CountDownLatch inWrite = new CountDownLatch(1), release = new CountDownLatch(1);
        List<int[]> written = java.util.Collections.synchronizedList(new ArrayList<>());
        p.note(1, 10);
        Thread flusher = Thread.ofPlatform().start(() -> p.flush((d, t) -> {
            inWrite.countDown();
            try {
                release.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            written.add(new int[] {d, t});
        }));
        assertTrue(inWrite.await(10, TimeUnit.SECONDS));
        Thread job = Thread.ofPlatform().start(() -> {
            for (int i = 2; i <= 5; i++) p.note(i, 10);
        });
        job.join(TimeUnit.SECONDS.toMillis(10));
        boolean jobWaited = job.isAlive();
        release.countDown();
        flusher.join();
        job.join();
        assertFalse(jobWaited, "the job's thread waited for the store write of an earlier count");
        p.flush((d, t) -> written.add(new int[] {d, t}));
        assertEquals(List.of("1/10", "5/10"), written.stream().map(w -> w[0] + "/" + w[1]).toList());
    }

    /** Nothing new: no write; a failed write is retried by the next flush with the latest count. */
    @Test
    void writesOnlyWhatTheStoreLacks() {
        LatestProgress p = new LatestProgress();
        List<String> written = new ArrayList<>();
        p.flush((d, t) -> written.add(d + "/" + t));
        assertEquals(List.of(), written);
        p.note(3, 8);
        assertThrows(IllegalStateException.class, () -> p.flush((d, t) -> {
            throw new IllegalStateException("store down");
        }));
        p.note(4, 8);
        p.flush((d, t) -> written.add(d + "/" + t));
        p.flush((d, t) -> written.add(d + "/" + t));
        assertEquals(List.of("4/8"), written);
    }

    /** Many flushers and one noting thread: the counts written only go up. */
    @Test
    void theStoreNeverGoesBack() throws Exception {
        LatestProgress p = new LatestProgress();
        List<Integer> written = java.util.Collections.synchronizedList(new ArrayList<>());
        List<Thread> flushers = new ArrayList<>();
        java.util.concurrent.atomic.AtomicBoolean done = new java.util.concurrent.atomic.AtomicBoolean();
        for (int f = 0; f < 3; f++) {
            flushers.add(Thread.ofPlatform().start(() -> {
                while (!done.get()) p.flush((d, t) -> written.add(d));
            }));
        }
        for (int i = 1; i <= 20_000; i++) p.note(i, 20_000);
        done.set(true);
        for (Thread t : flushers) t.join();
        p.flush((d, t) -> written.add(d));
        List<Integer> w = List.copyOf(written);
        for (int i = 1; i < w.size(); i++) assertTrue(w.get(i) > w.get(i - 1), "wrote " + w.get(i) + " after " + w.get(i - 1));
        assertEquals(20_000, w.getLast());
    }
}
