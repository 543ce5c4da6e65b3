package dev.headroom.models.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
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
        EncodeBuffers b = new EncodeBuffers(20, 4);
        byte[] first = b.take(8), other = b.take(8);
        assertTrue(first.length >= 8 && other.length >= 8);
        assertEquals(16, b.inUse());
        AtomicReference<byte[]> third = new AtomicReference<>();
        Thread t = Thread.ofPlatform().start(() -> third.set(b.take(8)));
        t.join(300);
        assertTrue(t.isAlive(), "8 + 8 + 8 bytes of a 20-byte budget: the third waits");
        b.give(first, 8);
        t.join(10_000);
        assertFalse(t.isAlive(), "given back: the third goes on");
        assertSame(first, third.get(), "the given-back buffer is taken again, not a new one");
        assertTrue(b.waitedNanos() > 0, "the wait is counted");
        b.give(other, 8);
        b.give(third.get(), 8);
        assertEquals(0, b.inUse());
        byte[] huge = b.take(50);
        assertEquals(50, huge.length);
        assertEquals(20, b.inUse(), "a piece bigger than the budget takes all of it, and gets its bytes");
        b.give(huge, 50);
        assertEquals(0, b.inUse());
        assertNotSame(huge, b.take(3), "a buffer over half the budget is not kept");
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
