package dev.headroom.core;

import java.util.Locale;

/** Byte sizes as PyTorch prints them ("20.00 MiB", "1.37 GiB", "0 bytes", "18.13 GB") and back. */
public final class Sizes {
    private Sizes() {}

    /**
     * Parses a number and a unit. PyTorch's CUDA, HIP and XPU messages use KiB/MiB/GiB; its MPS
     * messages print "KB/MB/GB" for the same binary units, so those are read as powers of 1024 too.
     * Returns -1 for a unit it does not know.
     */
    public static long parse(String number, String unit) {
        double v = Double.parseDouble(number.replace(",", ""));
        long mult = switch (unit.toLowerCase(Locale.ROOT)) {
            case "b", "byte", "bytes" -> 1L;
            case "kib", "kb", "k" -> 1L << 10;
            case "mib", "mb", "m" -> 1L << 20;
            case "gib", "gb", "g" -> 1L << 30;
            case "tib", "tb", "t" -> 1L << 40;
            default -> -1;
        };
        return mult < 0 ? -1 : Math.round(v * mult);
    }

    /** "1.37 GiB", "512.0 MiB", "256 bytes". */
    public static String format(long bytes) {
        if (bytes < 1024) return bytes + " bytes";
        String[] units = {"KiB", "MiB", "GiB", "TiB"};
        double v = bytes;
        int u = -1;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return String.format(Locale.ROOT, "%.2f %s", v, units[u]);
    }

    /** Parses "12GiB", "8 GB", "24g", "12288MiB" as given on the command line; a bare number is GiB. */
    public static long parseOption(String s) {
        var m = java.util.regex.Pattern.compile("(?i)\\s*([0-9]+(?:\\.[0-9]+)?)\\s*([kmgt]?)(?:i?b)?\\s*").matcher(s);
        if (!m.matches()) throw new IllegalArgumentException("'" + s + "' is not a size; write it like 12GiB, 8GB or 24g");
        return parse(m.group(1), m.group(2).isEmpty() ? "g" : m.group(2));
    }
}
