package dev.headroom.cli;

import dev.headroom.runtime.TiledUpscaler;
import java.io.PrintStream;

/** A one-line progress bar (tiles done, ETA) redrawn in place on a terminal. */
final class ProgressBar implements TiledUpscaler.Progress {
    private final PrintStream out;
    private final String label;
    private final long start = System.nanoTime();
    private int lastWidth;

    ProgressBar(PrintStream out, String label) {
        this.out = out;
        this.label = label;
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
        String line = String.format("%s [%s%s] %d/%d tiles  %s left", label, "#".repeat(filled), "-".repeat(width - filled),
                done, total, clock(eta));
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
