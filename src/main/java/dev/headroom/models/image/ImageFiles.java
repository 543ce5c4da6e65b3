package dev.headroom.models.image;

import dev.headroom.core.image.FloatImage;
import dev.headroom.core.image.InputImage;
import dev.headroom.core.image.SampleImage;
import dev.headroom.core.image.Orientation;
import dev.headroom.runtime.TempFiles;
import java.awt.Point;
import java.awt.Transparency;
import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.ComponentColorModel;
import java.awt.image.DataBuffer;
import java.awt.image.IndexColorModel;
import java.awt.image.Raster;
import java.awt.image.WritableRaster;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;

/**
 * Reads PNG (8 and 16 bit; gray, gray+alpha, RGB, RGBA, palette) and JPEG into {@link FloatImage}s
 * in [0, 1], and writes PNGs. The pixel count is checked from the header before anything is
 * decoded, so a decompression bomb costs nothing. JPEGs are read whole by TwelveMonkeys' reader
 * (found through ImageIO's registry), which converts CMYK, YCCK and Adobe-inverted files to RGB;
 * their EXIF orientation is applied. {@link #readInput} decodes PNGs and sequential JPEGs by rows. Damage is refused unless {@link ReadOptions#lenient}. Writes go to a temporary file beside the target
 * and are renamed into place, so a failed run leaves no partial file.
 */
public final class ImageFiles {
    private ImageFiles() {}

    /** A bad or unreadable image; the message says which file and what is wrong. */
    public static final class BadImage extends RuntimeException {
        public BadImage(Path file, String what) {
            super(file + ": " + what);
        }

        /** An image that cannot be written as asked (the message says what to choose instead). */
        public BadImage(String what) {
            super(what);
        }
    }

    /**
     * How strictly to read. Strict (the default) refuses a PNG whose chunk CRCs do not match or
     * that ends early, and any image the decoder warns about (a truncated JPEG decodes to a grey
     * bottom with only a warning); lenient reads them as ImageIO does. EXIF orientation is applied
     * unless ignored.
     */
    public record ReadOptions(boolean lenient, boolean ignoreOrientation) {
        public static final ReadOptions STRICT = new ReadOptions(false, false);
    }

    public static FloatImage read(Path file, long maxPixels) {
        return read(file, maxPixels, ReadOptions.STRICT);
    }

    /**
     * Checks, from the header alone, that the file is an image headroom reads and within
     * {@code maxPixels}: a run over several inputs refuses a bad one before any work.
     */
    public static void probe(Path file, long maxPixels) {
        withReader(file, (reader, in) -> {
            reader.setInput(in, true, true);
            checkSize(file, reader.getWidth(0), reader.getHeight(0), maxPixels);
            return null;
        });
    }

    /** What is done with an image's reader, which {@link #withReader} opens, checks and disposes. */
    private interface ReaderUse<T> {
        T apply(ImageReader reader, ImageInputStream in) throws IOException;
    }

    /**
     * Opens {@code file} for ImageIO (refusing folders, devices and files no reader takes), runs
     * {@code use} on its reader, and turns every failure into one {@link BadImage}.
     */
    private static <T> T withReader(Path file, ReaderUse<T> use) {
        String problem = dev.headroom.models.InputFiles.problem(file);
        if (problem != null) throw new BadImage(file, problem);
        try (ImageInputStream in = ImageIO.createImageInputStream(file.toFile())) {
            if (in == null) throw new BadImage(file, "cannot open");
            Iterator<ImageReader> readers = ImageIO.getImageReaders(in);
            if (!readers.hasNext()) throw new BadImage(file, "not an image headroom reads (PNG or JPEG)");
            ImageReader reader = readers.next();
            try {
                return use.apply(reader, in);
            } finally {
                reader.dispose();
            }
        } catch (IOException | RuntimeException e) {
            if (e instanceof BadImage b) throw b;
            String m = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
            throw new BadImage(file, "damaged or unsupported image (" + m.lines().findFirst().orElse(m) + ")");
        }
    }

    private static void checkSize(Path file, long w, long h, long maxPixels) {
        if (w < 1 || h < 1) throw new BadImage(file, "image has zero size (" + w + "x" + h + ")");
        if (w * h > maxPixels) {
            throw new BadImage(file, w + "x" + h + " is " + w * h + " pixels, over the limit of " + maxPixels + " (raise it with --max-pixels)");
        }
    }

    public static FloatImage read(Path file, long maxPixels, ReadOptions options) {
        return readImage(file, maxPixels, options, false).toFloat();
    }

    /**
     * As {@link #read}, but 8- and 16-bit images are kept as their samples ({@link SampleImage}, a
     * quarter or half of the float bytes), converted to the same floats only as they are read; a
     * JPEG that its EXIF orientation turns is a view that turns them as they are read
     * ({@link dev.headroom.core.image.OrientedImage}). Other depths come back as a {@link FloatImage}.
     */
    public static InputImage readSamples(Path file, long maxPixels, ReadOptions options) {
        return readImage(file, maxPixels, options, true);
    }

    /** An input as `upscale` reads it, and why it was decoded whole (null: its rows stream). */
    public record Input(InputImage image, String decodedWhole) {}

    /**
     * As {@link #readSamples}, but a PNG whose rows can stream ({@link PngRows}: 8 or 16 bits, not
     * interlaced) or a sequential JPEG ({@link JpegRows}: not progressive, no colour profile, not
     * turned by EXIF) is decoded by rows as the tiler reads them ({@link StreamedRows}), to the same
     * floats: host memory holds the tile rows in flight, not the image. Reading by rows is strict;
     * other files are decoded whole, and {@link Input#decodedWhole} says why.
     */
    public static Input readInput(Path file, long maxPixels, ReadOptions options) {
        String why = "not a PNG or JPEG";
        byte[] magic = magic(file);
        if (java.util.Arrays.equals(magic, PngRows.SIGNATURE)) {
            PngRows.Header h = null;
            try {
                h = PngRows.header(file);
            } catch (IOException | RuntimeException e) {
                why = "PNG header unreadable by rows";   // ImageIO's reader says what is wrong below
            }
            if (h != null) {
                why = options.lenient() ? LENIENT : h.whyWhole();
                if (why == null) {
                    checkSize(file, h.width(), h.height(), maxPixels);
                    try {
                        PngChunks.check(file);
                    } catch (IOException e) {
                        throw new BadImage(file, "cannot read (" + e.getMessage() + ")");
                    }
                    return new Input(StreamedRows.png(file, h), null);
                }
            }
        } else if (magic.length >= 2 && (magic[0] & 0xff) == 0xff && (magic[1] & 0xff) == 0xd8) {
            JpegRows.Header h = null;
            try {
                h = JpegRows.header(file, options.ignoreOrientation());
            } catch (IOException | RuntimeException e) {
                why = "JPEG header unreadable by rows";   // the whole path's reader says what is wrong below
            }
            if (h != null) {
                why = h.whyWhole() != null ? h.whyWhole() : options.lenient() ? LENIENT : null;
                if (why == null) {
                    checkSize(file, h.width(), h.height(), maxPixels);
                    return new Input(StreamedRows.jpeg(file, h), null);
                }
            }
        }
        return new Input(readSamples(file, maxPixels, options), why);
    }

    private static final String LENIENT = "--lenient (ImageIO reads damaged files its own way)";

    /** The file's first 8 bytes (fewer for a shorter file; none for a folder, a device or an unreadable file). */
    private static byte[] magic(Path file) {
        if (dev.headroom.models.InputFiles.problem(file) != null) return new byte[0];
        try (var in = Files.newInputStream(file)) {
            return in.readNBytes(8);
        } catch (IOException e) {
            return new byte[0];
        }
    }

    private static InputImage readImage(Path file, long maxPixels, ReadOptions options, boolean samples) {
        return withReader(file, (reader, in) -> {
            String format = reader.getFormatName().toLowerCase(java.util.Locale.ROOT);
            if (format.equals("png") && !options.lenient()) PngChunks.check(file);
            reader.setInput(in, true, false);
            checkSize(file, reader.getWidth(0), reader.getHeight(0), maxPixels);
            java.util.List<String> warnings = new java.util.ArrayList<>();
            reader.addIIOReadWarningListener((r, warning) -> warnings.add(warning));
            BufferedImage decoded = reader.read(0);
            if (!warnings.isEmpty() && !options.lenient()) {
                throw new BadImage(file, "damaged image: the decoder warns \"" + warnings.getFirst() + "\" (--lenient reads it anyway)");
            }
            int orientation = options.ignoreOrientation() || !(format.equals("jpeg") || format.equals("jpg")) ? 1 : Exif.orientation(file);
            if (samples) {
                InputImage kept = toSamples(decoded);
                if (kept != null) return dev.headroom.core.image.OrientedImage.of(kept, orientation);   // turned as it is read, not copied
            }
            FloatImage img = toFloat(decoded);
            return orientation == 1 ? img : Orientation.apply(img, orientation);
        });
    }

    /** The decoded image as 8- or 16-bit samples in [0, 1] order of {@link #toFloat}; null for other depths. */
    static SampleImage toSamples(BufferedImage img) {
        img = componentRgbOrGray(img);
        Raster r = img.getRaster();
        int bands = r.getNumBands();
        int bits = r.getSampleModel().getSampleSize(0);
        if (bits != 8 && bits != 16) return null;
        for (int b = 1; b < bands; b++) if (r.getSampleModel().getSampleSize(b) != bits) return null;
        checkBands(img, bands);
        int w = img.getWidth(), h = img.getHeight();
        int n = Math.multiplyExact(Math.multiplyExact(w, h), bands);
        SampleImage shared = sharedSamples(r, w, h, bands, n);
        if (shared != null) return shared;
        int[] row = new int[w * bands];
        byte[] b8 = bits == 8 ? new byte[n] : null;
        short[] b16 = bits == 16 ? new short[n] : null;
        for (int y = 0; y < h; y++) {
            r.getPixels(0, y, w, 1, row);
            int off = y * w * bands;
            if (b8 != null) for (int i = 0; i < row.length; i++) b8[off + i] = (byte) row[i];
            else for (int i = 0; i < row.length; i++) b16[off + i] = (short) row[i];
        }
        return b8 != null ? SampleImage.of8(w, h, bands, b8) : SampleImage.of16(w, h, bands, b16);
    }

    /**
     * The decoder's own sample array where it is (height, width, channels) with each pixel's samples
     * together and nothing around them (the PNG reader's rasters are; RGB comes as BGR), so reading
     * does not hold the samples twice.
     */
    private static SampleImage sharedSamples(Raster r, int w, int h, int bands, int n) {
        if (!(r.getSampleModel() instanceof java.awt.image.PixelInterleavedSampleModel sm)) return null;
        if (r.getSampleModelTranslateX() != 0 || r.getSampleModelTranslateY() != 0) return null;
        if (sm.getPixelStride() != bands || sm.getScanlineStride() != w * bands) return null;
        int[] offsets = sm.getBandOffsets();
        if (java.util.Arrays.stream(offsets).distinct().count() != bands) return null;
        java.awt.image.DataBuffer buffer = r.getDataBuffer();
        if (buffer.getNumBanks() != 1 || buffer.getOffset() != 0) return null;
        if (buffer instanceof java.awt.image.DataBufferByte bytes && bytes.getData().length == n) return SampleImage.of8(w, h, bytes.getData(), offsets);
        if (buffer instanceof java.awt.image.DataBufferUShort shorts && shorts.getData().length == n) return SampleImage.of16(w, h, shorts.getData(), offsets);
        return null;
    }

    private static void checkBands(BufferedImage img, int bands) {
        boolean gray = img.getColorModel().getColorSpace().getType() == ColorSpace.TYPE_GRAY;
        if (!gray && bands < 3 || bands > 4) throw new IllegalArgumentException(bands + "-band images are not supported");
    }

    static FloatImage toFloat(BufferedImage img) {
        img = componentRgbOrGray(img);
        Raster r = img.getRaster();
        int bands = r.getNumBands();
        int bits = r.getSampleModel().getSampleSize(0);
        checkBands(img, bands);
        int w = img.getWidth(), h = img.getHeight();
        float max = (1 << bits) - 1;
        FloatImage out = FloatImage.blank(w, h, bands, bits > 8 ? 16 : 8);
        float[] d = out.data();
        int[] row = new int[w * bands];
        for (int y = 0; y < h; y++) {
            r.getPixels(0, y, w, 1, row);
            for (int i = 0; i < row.length; i++) d[y * w * bands + i] = row[i] / max;
        }
        return out;
    }

    /** CMYK, YCCK and other spaces converted to sRGB, palettes expanded: an image of RGB or gray components. */
    private static BufferedImage componentRgbOrGray(BufferedImage img) {
        int space = img.getColorModel().getColorSpace().getType();
        if (space != ColorSpace.TYPE_RGB && space != ColorSpace.TYPE_GRAY && !(img.getColorModel() instanceof IndexColorModel)) {
            // CMYK, YCCK and other spaces: to sRGB through the image's colour space (K must never become alpha)
            img = toRgb(img);
        }
        if (img.getColorModel() instanceof IndexColorModel icm) {
            // palette: expand through the palette
            boolean alpha = icm.hasAlpha();
            BufferedImage rgb = new BufferedImage(img.getWidth(), img.getHeight(), alpha ? BufferedImage.TYPE_4BYTE_ABGR : BufferedImage.TYPE_3BYTE_BGR);
            rgb.getGraphics().drawImage(img, 0, 0, null);
            img = rgb;
        }
        return img;
    }

    private static BufferedImage toRgb(BufferedImage img) {
        boolean alpha = img.getColorModel().hasAlpha();
        BufferedImage rgb = new BufferedImage(img.getWidth(), img.getHeight(), alpha ? BufferedImage.TYPE_4BYTE_ABGR : BufferedImage.TYPE_3BYTE_BGR);
        new java.awt.image.ColorConvertOp(null).filter(img, rgb);
        return rgb;
    }

    /** Writes a PNG of 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA) channels with ImageIO, atomically ({@link OutputFile}). */
    public static void writePng(FloatImage img, Path file) throws IOException {
        try (OutputFile out = OutputFile.create(file)) {
            if (!ImageIO.write(toBuffered(img), "png", out.temp().toFile())) throw new IOException("no PNG writer");
            out.commit();
        }
    }

    static BufferedImage toBuffered(FloatImage img) {
        int c = img.channels(), w = img.width(), h = img.height();
        boolean wide = img.bitDepth() > 8;
        int type = wide ? DataBuffer.TYPE_USHORT : DataBuffer.TYPE_BYTE;
        ColorSpace cs = ColorSpace.getInstance(c <= 2 ? ColorSpace.CS_GRAY : ColorSpace.CS_sRGB);
        boolean alpha = c == 2 || c == 4;
        ComponentColorModel cm = new ComponentColorModel(cs, alpha, false, alpha ? Transparency.TRANSLUCENT : Transparency.OPAQUE, type);
        WritableRaster raster = Raster.createInterleavedRaster(type, w, h, c, new Point(0, 0));
        float max = wide ? 65535f : 255f;
        int[] row = new int[w * c];
        float[] d = img.data();
        for (int y = 0; y < h; y++) {
            for (int i = 0; i < row.length; i++) row[i] = Math.round(Math.clamp(d[y * w * c + i], 0f, 1f) * max);
            raster.setPixels(0, y, w, 1, row);
        }
        return new BufferedImage(cm, raster, false, null);
    }
}
