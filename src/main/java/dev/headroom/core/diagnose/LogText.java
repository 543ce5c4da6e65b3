package dev.headroom.core.diagnose;

import java.util.regex.Pattern;

/** Cleans one line of a console log: ANSI colour and cursor codes, other control characters. */
public final class LogText {
    private LogText() {}

    private static final Pattern ANSI = Pattern.compile("\u001B(?:\\[[0-9;?]*[ -/]*[@-~]|\\][^\u0007\u001B]*(?:\u0007|\u001B\\\\)|[@-Z\\\\-_])");

    public static String clean(String line) {
        String s = line.indexOf('\u001B') >= 0 ? ANSI.matcher(line).replaceAll("") : line;
        // other control characters (NUL, backspace, ...) carry nothing a reader needs
        StringBuilder sb = null;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < 0x20 && c != '\t') {
                if (sb == null) sb = new StringBuilder(s.substring(0, i));
            } else if (sb != null) {
                sb.append(c);
            }
        }
        return sb == null ? s : sb.toString();
    }
}
