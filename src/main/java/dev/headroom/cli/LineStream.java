package dev.headroom.cli;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.function.Consumer;

/**
 * Splits a byte stream into lines in bounded memory. Both '\n' and '\r' end a line (progress bars
 * redraw with '\r'); a line longer than {@link #MAX_LINE} bytes is cut there and the rest skipped;
 * invalid UTF-8 becomes U+FFFD (String's decoder replaces it) instead of an error, so binary
 * garbage is just more text to skip.
 */
final class LineStream {
    static final int MAX_LINE = 64 * 1024;

    private LineStream() {}

    static void forEach(InputStream in, Consumer<String> line) throws IOException {
        byte[] buf = new byte[1 << 16];
        byte[] cur = new byte[MAX_LINE];
        int len = 0;
        boolean skipping = false;
        for (int n; (n = in.read(buf)) > 0; ) {
            for (int i = 0; i < n; i++) {
                byte b = buf[i];
                if (b == '\n' || b == '\r') {
                    if (!skipping) line.accept(new String(cur, 0, len, StandardCharsets.UTF_8));
                    len = 0;
                    skipping = false;
                } else if (skipping) {
                    continue;
                } else if (len < MAX_LINE) {
                    cur[len++] = b;
                } else {
                    line.accept(new String(cur, 0, len, StandardCharsets.UTF_8));
                    len = 0;
                    skipping = true;
                }
            }
        }
        if (len > 0 && !skipping) line.accept(new String(cur, 0, len, StandardCharsets.UTF_8));
    }
}
