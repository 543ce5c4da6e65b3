package dev.headroom.models.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.testing.Randoms;
import java.awt.image.Raster;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A PNG writer's caller hands its rows over without waiting for an encoding thread (it waits only
 * when the shared budget of waiting rows is taken), the file is the same, and every buffer comes
 * back to the budget however the file ends.
 */
class EncodeBuffersTest {
    @TempDir
    Path dir;

    @Test
    void takeWaitsOnlyWhileTheBudgetIsTaken() throws Exception {
        EncodeBuffers b = new EncodeBuffers(200);
        byte[] first = b.take(30), other = b.take(30), big = b.take(140);
        assertEquals(30, first.length, "a new buffer is as long as asked");
        assertEquals(200, b.inUse(), "no wait up to the whole budget");
        byte[] waited = takeInAnotherThreadAndWait(b, 15, () -> b.give(first));
        assertEquals(30 + 140 + 15, b.inUse());
        b.give(waited);
        assertSame(first, b.take(20), "a given-back buffer of 20 to 40 bytes is taken again for 20, not a new one");
        assertEquals(30 + 140 + 30, b.inUse(), "what the buffers handed out hold, not what was asked");
        b.give(first);
        b.give(other);
        b.give(big);
        assertEquals(0, b.inUse());
        byte[] huge = b.take(500);
        assertEquals(500, huge.length);
        assertEquals(200, b.inUse(), "a piece bigger than the budget takes all of it, and gets its bytes");
        b.give(huge);
        assertEquals(0, b.inUse());
        assertNotSame(huge, b.take(300), "a buffer over half the budget is not kept");
    }

    @Test
    void aWaitingCallerIsNotPassedByALaterNarrowOne() throws Exception {
        EncodeBuffers b = new EncodeBuffers(10);
        byte[] held = b.take(6);
        AtomicReference<byte[]> wide = new AtomicReference<>();
        Thread w = Thread.ofPlatform().start(() -> wide.set(b.take(8)));
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (w.getState() != Thread.State.WAITING && System.nanoTime() < end) Thread.sleep(5);
        AtomicReference<byte[]> narrow = new AtomicReference<>();
        Thread n = Thread.ofPlatform().start(() -> narrow.set(b.take(4)));
        n.join(300);
        assertTrue(n.isAlive(), "4 bytes are free, but a take of 8 waits before it: the narrow one waits its turn");
        b.give(held);
        w.join(10_000);
        assertFalse(w.isAlive(), "the wide one goes first");
        b.give(wide.get());
        n.join(10_000);
        assertFalse(n.isAlive());
        b.give(narrow.get());
        assertEquals(0, b.inUse());
    }

    @Test
    void aFailedAllocationGivesItsChargeBack() {
        EncodeBuffers b = new EncodeBuffers(100);
        assertThrows(OutOfMemoryError.class, () -> b.take(Integer.MAX_VALUE), "more than the VM gives one array");
        assertEquals(0, b.inUse(), "the charge of a take that threw is given back");
    }

    /** Starts a take of {@code bytes} in another thread, checks it waits, runs {@code then}, and returns what it took. */
    private static byte[] takeInAnotherThreadAndWait(EncodeBuffers b, int bytes, Runnable then) throws InterruptedException {
        AtomicReference<byte[]> got = new AtomicReference<>();
        Thread t = Thread.ofPlatform().start(() -> got.set(b.take(bytes)));
        t.join(300);
        assertTrue(t.isAlive(), "the budget is taken: it waits");
        then.run();
        t.join(10_000);
        assertFalse(t.isAlive(), "given back: it goes on");
        return got.get();
    }

    @Test
    void rowsAreHandedOverWhileEveryEncodingThreadIsBusyAndTheFileIsTheSame() throws Exception {
        Random rnd = new Random(Randoms.seed());
        // 1200x900 RGB: 3.2 MB of samples in bands of 100 rows, a few pieces each; well inside the budget
        int w = 1200, h = 900, rowBytes = w * 3;
        byte[] img = new byte[h * rowBytes];
        for (int i = 0; i < img.length; i++) img[i] = (byte) (i / 7 % 251 + rnd.nextInt(3));
        assertTrue(img.length < PngWriter.BUFFERS.budget(), "the test's rows fit the budget");
        Path out = dir.resolve("busy.png");
        CountDownLatch release = new CountDownLatch(1);
        List<CountDownLatch> started = blockEveryEncodingThread(release);
        try (ImageWriter writer = ImageWriter.open(out, new Encoding(ImageFormat.PNG, null, 1), w, h, 3, 8)) {
            for (CountDownLatch s : started) assertTrue(s.await(10, TimeUnit.SECONDS), "every encoding thread is busy");
            assertTimeoutPreemptively(Duration.ofSeconds(20), () -> {
                for (int y = 0; y < h; y += 100) {
                    byte[] band = java.util.Arrays.copyOfRange(img, y * rowBytes, (y + 100) * rowBytes);
                    writer.sampleRows(band, 0, 100);
                    java.util.Arrays.fill(band, (byte) 0x55);   // the writer must not read the band after the call
                }
            }, "with every encoding thread busy, the rows are still handed over (before, each band waited for a thread to take its pieces)");
            assertTrue(PngWriter.BUFFERS.inUse() >= img.length, "the rows wait in the budget: " + PngWriter.BUFFERS.inUse());
            release.countDown();
            writer.finish();
        } finally {
            release.countDown();
        }
        Raster r = ImageIO.read(out.toFile()).getRaster();
        int[] got = r.getPixels(0, 0, w, h, (int[]) null);
        int[] want = new int[img.length];
        for (int i = 0; i < img.length; i++) want[i] = img[i] & 0xff;
        assertArrayEquals(want, got);
        awaitBudgetFree();
    }

    @Test
    void aWriterWaitsOnlyWhenTheBudgetIsQueuedAndSaysHowLong() throws Exception {
        // more rows than the whole budget while every encoding thread is busy: the caller waits until they go on
        int w = 4096, rowBytes = w * 3, rows = (int) ((PngWriter.BUFFERS.budget() + (8L << 20)) / rowBytes);
        Path out = dir.resolve("waits.png");
        CountDownLatch release = new CountDownLatch(1);
        List<CountDownLatch> started = blockEveryEncodingThread(release);
        Thread releaser = null;
        try (ImageWriter writer = ImageWriter.open(out, new Encoding(ImageFormat.PNG, null, 1), w, rows, 3, 8)) {
            for (CountDownLatch s : started) assertTrue(s.await(10, TimeUnit.SECONDS));
            releaser = Thread.ofPlatform().start(() -> {   // the encoders go on a second from now
                try {
                    Thread.sleep(1000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                release.countDown();
            });
            byte[] band = new byte[256 * rowBytes];
            for (int y = 0; y < rows; y += 256) writer.sampleRows(band, 0, Math.min(256, rows - y));
            writer.finish();
            assertTrue(writer.waitNanos() >= 300_000_000L, "waited for the encoders, said: " + writer.waitNanos() / 1e6 + " ms");
        } finally {
            release.countDown();
            if (releaser != null) releaser.join();
        }
        awaitBudgetFree();
        try (ImageWriter idle = ImageWriter.open(dir.resolve("idle.png"), new Encoding(ImageFormat.PNG, null, 1), 100, 100, 3, 8)) {
            idle.sampleRows(new byte[100 * 300], 0, 100);
            idle.finish();
            assertTrue(idle.waitNanos() < 100_000_000L, "no wait with the encoders free: " + idle.waitNanos() / 1e6 + " ms");
        }
    }

    @Test
    void aFileGivenUpGivesEveryBufferBack() throws Exception {
        int w = 1000, h = 600;
        Path out = dir.resolve("given-up.png");
        CountDownLatch release = new CountDownLatch(1);
        List<CountDownLatch> started = blockEveryEncodingThread(release);
        try {
            for (CountDownLatch s : started) assertTrue(s.await(10, TimeUnit.SECONDS));
            try (ImageWriter writer = ImageWriter.open(out, new Encoding(ImageFormat.PNG, null, 1), w, h, 3, 8)) {
                assertTimeoutPreemptively(Duration.ofSeconds(20), () -> writer.sampleRows(new byte[300 * w * 3], 0, 300),
                        "rows are handed over while every encoding thread is busy");   // then the job fails: no finish()
                assertTrue(PngWriter.BUFFERS.inUse() > 0);
            }
        } finally {
            release.countDown();
        }
        awaitBudgetFree();
        assertFalse(Files.exists(out));
        try (var files = Files.list(dir)) {
            assertEquals(0, files.count(), "no temporary file left");
        }
    }

    /** A task on every thread of the encoders' pool, each waiting for {@code release}; their start latches. */
    private static List<CountDownLatch> blockEveryEncodingThread(CountDownLatch release) {
        List<CountDownLatch> started = new ArrayList<>();
        for (int i = 0; i < Runtime.getRuntime().availableProcessors(); i++) {
            CountDownLatch s = new CountDownLatch(1);
            started.add(s);
            PngWriter.POOL.submit(() -> {
                s.countDown();
                release.await();
                return null;
            });
        }
        return started;
    }

    private static void awaitBudgetFree() throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (PngWriter.BUFFERS.inUse() > 0 && System.nanoTime() < end) Thread.sleep(10);
        assertEquals(0, PngWriter.BUFFERS.inUse(), "every piece's buffer is back in the budget");
    }
}
