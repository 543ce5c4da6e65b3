package dev.headroom.cli;

import dev.headroom.runtime.TiledUpscaler;
import java.io.PrintStream;

/**
 * A one-line progress bar (tiles done, output megapixels per second, ETA) redrawn in place on a
 * terminal. Rows are encoded and written while tiles run, so the ETA covers the writer too but for
 * its last band, which the bar names once the last tile is done.
 */
final class ProgressBar implements TiledUpscaler.Progress {
    private final PrintStream out;
    private final String label;
    private final long outputPixels;
    private final long start = System.nanoTime();
    private int lastWidth;

    ProgressBar(PrintStream out, String label, long outputPixels) {
        this.out = out;
        this.label = label;
        this.outputPixels = outputPixels;
    }

    /** Whether stderr is a terminal, as the launcher found before it filtered stderr. */
    static boolean terminal() {
        return "1".equals(System.getProperty("headroom.tty"));
    }

    @Override
    public void tileDone(int done, int total) {
        double elapsed = (System.nanoTime() - start) / 1e9;
        double eta = done == 0 ? 0 : elapsed / done * (total - done);
        int width = 24, filled = (int) Math.round((double) done / total * width);
        double mps = elapsed <= 0 ? 0 : outputPixels * ((double) done / total) / 1e6 / elapsed;
        String line = String.format("%s [%s%s] %d/%d tiles  %.1f MP/s  %s", label, "#".repeat(filled), "-".repeat(width - filled),
                done, total, mps, done == total ? "writing the last rows" : clock(eta) + " left");
        out.print("\r" + line + " ".repeat(Math.max(0, lastWidth - line.length())));
        lastWidth = line.length();
        if (done == total) out.println();
        out.flush();
    }

    static String clock(double seconds) {
        long s = Math.round(seconds);
        return s >= 3600 ? String.format("%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String.format("%d:%02d", s / 60, s % 60);
    }
}
