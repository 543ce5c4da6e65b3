package dev.headroom.models.image;

/**
 * How to encode an output: its format, a quality for lossy JPEG and WebP (0-100; for WebP null
 * means lossless), and the PNG deflate level (0-9; 1, the default, is fast, as OpenCV's PNG writer
 * uses; 6 is zlib's and PIL's default).
 */
public record Encoding(ImageFormat format, Integer quality, int pngLevel) {
    public static final int JPEG_QUALITY = 92;
    public static final int PNG_LEVEL = 1;

    public Encoding {
        if (quality != null && (quality < 0 || quality > 100)) throw new IllegalArgumentException("quality " + quality + ": use 0 to 100");
        if (pngLevel < 0 || pngLevel > 9) throw new IllegalArgumentException("PNG compression level " + pngLevel + ": use 0 to 9");
    }

    public static Encoding png() {
        return new Encoding(ImageFormat.PNG, null, PNG_LEVEL);
    }
}
