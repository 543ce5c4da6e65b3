package dev.headroom.models.image;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/** The output formats headroom writes, known by a file's extension or by name ({@code --format}). */
public enum ImageFormat {
    PNG("png"), JPEG("jpg", "jpeg"), WEBP("webp"), TIFF("tif", "tiff");

    /** Extensions, the one new names get first. */
    public final List<String> extensions;

    ImageFormat(String... extensions) {
        this.extensions = List.of(extensions);
    }

    public String extension() {
        return extensions.getFirst();
    }

    /** The format a file name's extension names, or null when it names none of them. */
    public static ImageFormat ofExtension(Path file) {
        String n = file.getFileName().toString().toLowerCase(Locale.ROOT);
        int dot = n.lastIndexOf('.');
        if (dot < 0) return null;
        String ext = n.substring(dot + 1);
        for (ImageFormat f : values()) if (f.extensions.contains(ext)) return f;
        return null;
    }

    /** The format called {@code name} (png, jpeg or jpg, webp, tiff or tif); null if none is. */
    public static ImageFormat named(String name) {
        String n = name.toLowerCase(Locale.ROOT);
        for (ImageFormat f : values()) if (f.name().equalsIgnoreCase(n) || f.extensions.contains(n)) return f;
        return null;
    }

    public static String names() {
        return "png, jpeg (jpg), webp, tiff (tif)";
    }
}
