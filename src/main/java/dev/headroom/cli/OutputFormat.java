package dev.headroom.cli;

import dev.headroom.models.image.Encoding;
import dev.headroom.models.image.ImageFormat;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/**
 * upscale's output format options: the format is the output file's extension's, or {@code --format}'s
 * (which must then agree with the extension); into a folder, {@code --format} or PNG.
 */
final class OutputFormat {
    @Option(names = "--format", paramLabel = "png|jpeg|webp|tiff",
            description = "Output format (default: the output's extension; PNG into a folder). Must agree with -o's extension")
    String format;

    @Option(names = "--quality", paramLabel = "0-100",
            description = "JPEG quality (default " + Encoding.JPEG_QUALITY + "), or WebP lossy quality (WebP is lossless without it)")
    Integer quality;

    @Option(names = "--compression", paramLabel = "0-9", defaultValue = "" + Encoding.PNG_LEVEL,
            description = "PNG and TIFF deflate level: 1 fast (default), 6 zlib's usual, 9 smallest; every core deflates")
    int compression;

    /** The format named by --format, or null. */
    ImageFormat named() {
        if (format == null) return null;
        ImageFormat f = ImageFormat.named(format);
        if (f == null) throw new Main.UsageError("--format " + format + ": use one of " + ImageFormat.names());
        return f;
    }

    /** The encoding for output file {@code out} (a file, not a folder). */
    Encoding forFile(Path out) {
        ImageFormat byName = named(), byExt = ImageFormat.ofExtension(out);
        if (byExt == null) {
            throw new Main.UsageError("cannot tell the format of " + out + " from its extension: name it .png, .jpg, .webp or .tif"
                    + (byName != null ? " (." + byName.extension() + " for --format " + format + ")" : ""));
        }
        if (byName != null && byName != byExt) {
            throw new Main.UsageError(out + " is named as " + byExt + " but --format says " + byName + "; make them agree (." + byName.extension() + ")");
        }
        return encoding(byExt);
    }

    /** The encoding for outputs written into a folder. */
    Encoding forFolder() {
        ImageFormat f = named();
        return encoding(f == null ? ImageFormat.PNG : f);
    }

    private Encoding encoding(ImageFormat f) {
        if (quality != null && f != ImageFormat.JPEG && f != ImageFormat.WEBP) {
            throw new Main.UsageError("--quality applies to JPEG and WebP, not " + f + " (PNG's size is set by --compression)");
        }
        if (quality != null && (quality < 0 || quality > 100)) throw new Main.UsageError("--quality " + quality + ": use 0 to 100");
        if (compression < 0 || compression > 9) throw new Main.UsageError("--compression " + compression + ": use 0 to 9");
        return new Encoding(f, quality, compression);
    }
}
