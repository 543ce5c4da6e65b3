package dev.headroom.models.image;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.FileOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A JPEG decoder that cannot stop (its read blocked on a pipe no one writes) is reported by close, not left silently. */
class JpegRowsCloseTest {

    private static boolean jpegRowsThreadAlive(String name) {
        return Thread.getAllStackTraces().keySet().stream().anyMatch(t -> t.getName().equals("jpeg-rows " + name) && t.isAlive());
    }

    @Test
    void aDecoderBlockedOnItsFileIsReportedByCloseWithItsFileAndRows(@TempDir Path dir) throws Exception {
        Path fifo = dir.resolve("stuck.jpg");
        int rc;
        try {
            rc = new ProcessBuilder("mkfifo", fifo.toString()).inheritIO().start().waitFor();
        } catch (java.io.IOException e) {
            rc = -1;
        }
        Assumptions.assumeTrue(rc == 0 && Files.exists(fifo), "skipped: mkfifo is not available here to make a file whose read blocks");
        JpegRows rows = JpegRows.open(fifo, new JpegRows.Header(16, 8, 3, null), 200);
        Thread.sleep(100);   // the decoder is now blocked opening the pipe, which has no writer
        var e = assertThrows(IllegalStateException.class, rows::close);
        assertTrue(e.getMessage().startsWith(fifo + ": the JPEG decoder did not stop within 200 ms of close (it had handed over 0 of 8 rows)"), e.getMessage());
        assertTrue(e.getMessage().contains("keeps the file open"), e.getMessage());
        assertTrue(jpegRowsThreadAlive("stuck.jpg"), "still blocked: close reported it rather than waiting for ever");
        new FileOutputStream(fifo.toFile()).close();   // a writer that ends at once: the read returns (an empty JPEG) and the thread ends
        long until = System.nanoTime() + 10_000_000_000L;
        while (jpegRowsThreadAlive("stuck.jpg") && System.nanoTime() < until) Thread.sleep(20);
        assertFalse(jpegRowsThreadAlive("stuck.jpg"), "the decoding thread ended once its read returned");
    }
}
