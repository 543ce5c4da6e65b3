package dev.headroom.models.image;

import com.twelvemonkeys.imageio.metadata.jpeg.JPEGSegment;
import com.twelvemonkeys.imageio.metadata.jpeg.JPEGSegmentUtil;
import java.awt.Point;
import java.awt.Transparency;
import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.ComponentColorModel;
import java.awt.image.DataBuffer;
import java.awt.image.DataBufferByte;
import java.awt.image.PixelInterleavedSampleModel;
import java.awt.image.Raster;
import java.awt.image.WritableRaster;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.TimeUnit;
import javax.imageio.ImageIO;
import javax.imageio.ImageReadParam;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;

/**
 * A sequential (baseline or extended, Huffman) JPEG decoded one row at a time, top to bottom, in
 * one pass, by the JDK's libjpeg reader: the reader writes each scanline it decodes into its
 * destination image with {@code setRect}, and the destination given here ({@link RowSink}) is an
 * image of the JPEG's size whose raster keeps no pixels but hands each row over. The decode runs on
 * a thread of its own, at most {@link #AHEAD} rows ahead of {@link #next}, so memory is those rows
 * and libjpeg's few MCU rows, not the image. The samples are libjpeg's, as on the whole path:
 * TwelveMonkeys' reader (which {@link ImageFiles} reads whole with) hands such files to this same
 * JDK reader with the same YCbCr-to-RGB conversion.
 *
 * <p>{@link Header#whyWhole} says which files stay whole: progressive (libjpeg holds every
 * coefficient until the last scan, and the JDK's reader then writes every row once per scan into
 * the destination, the final image only in the last; asking it for one pass,
 * {@code setSourceProgressivePasses}, gives an early scan's image, not the final one: checked on a
 * 10-scan file, every pixel differed), lossless, arithmetic-coded, 12-bit,
 * CMYK/YCCK, ICC profiles the whole path treats otherwise than the JDK's reader
 * ({@link JpegProfile}; a display profile such as Display P3 streams, each row converted through
 * it by the reader as TwelveMonkeys converts the whole image), Adobe or component ids that make
 * the colour space a guess, and EXIF orientations that turn the image.
 * Reading is strict: a decoder warning (a truncated file decodes to a grey bottom with a warning)
 * fails the next row with the message the whole path gives.
 */
final class JpegRows implements RowDecoder {
    /** Rows decoded ahead of the reader (each width x channels bytes). */
    static final int AHEAD = 16;

    /** The frame header (SOF) and what makes a file stay whole. */
    record Header(int width, int height, int channels, String whyWhole) {}

    /** The header of {@code file}, from its segments up to the first scan (read with TwelveMonkeys' segment reader). */
    static Header header(Path file, boolean ignoreOrientation) throws IOException {
        List<JPEGSegment> segments;
        try (ImageInputStream in = ImageIO.createImageInputStream(file.toFile())) {
            if (in == null) throw new IOException("cannot open");
            segments = JPEGSegmentUtil.readSegments(in, JPEGSegmentUtil.ALL_SEGMENTS);
        }
        JPEGSegment sof = null;
        int adobeTransform = -1;
        List<JPEGSegment> icc = new java.util.ArrayList<>();
        for (JPEGSegment s : segments) {
            int m = s.marker();
            if (m >= 0xffc0 && m <= 0xffcf && m != 0xffc4 && m != 0xffc8 && m != 0xffcc && sof == null) sof = s;
            if (m == 0xffe2 && "ICC_PROFILE".equals(s.identifier())) icc.add(s);
            if (m == 0xffee && "Adobe".equals(s.identifier())) adobeTransform = adobeTransform(s);
        }
        if (sof == null) return new Header(0, 0, 0, "JPEG without a frame header before its scan");
        byte[] f;
        try (InputStream d = sof.segmentData()) {
            f = d.readAllBytes();
        }
        if (f.length < 6) return new Header(0, 0, 0, "JPEG frame header of " + f.length + " bytes");
        int precision = f[0] & 0xff, height = (f[1] & 0xff) << 8 | (f[2] & 0xff), width = (f[3] & 0xff) << 8 | (f[4] & 0xff), n = f[5] & 0xff;
        int[] ids = new int[Math.min(n, (f.length - 6) / 3)];
        for (int i = 0; i < ids.length; i++) ids[i] = f[6 + 3 * i] & 0xff;
        String why = whyWhole(sof.marker(), precision, height, n, ids, adobeTransform, icc.isEmpty() ? null : JpegProfile.whyWhole(icc, n));
        if (why == null && !ignoreOrientation) {
            int orientation = Exif.orientation(file);
            if (orientation != 1) why = "EXIF orientation " + orientation + " (the image is turned)";
        }
        return new Header(width, height, n, why);
    }

    /** {@code iccWhy}: why the file's ICC profile keeps it whole ({@link JpegProfile#whyWhole}), or null (none, or one the reader converts rows through). */
    private static String whyWhole(int marker, int precision, int height, int n, int[] ids, int adobeTransform, String iccWhy) {
        switch (marker) {
            case 0xffc0, 0xffc1 -> { }
            case 0xffc2 -> { return "progressive JPEG (libjpeg holds every coefficient until the last scan)"; }
            case 0xffc3 -> { return "lossless JPEG"; }
            default -> { return marker >= 0xffc9 ? "arithmetic-coded JPEG" : "JPEG frame type SOF" + (marker & 0xf); }
        }
        if (precision != 8) return precision + "-bit JPEG samples";
        if (height == 0) return "JPEG whose height comes after its scan (DNL)";
        if (n == 4) return "CMYK/YCCK JPEG (converted to RGB through its profile)";
        if (n != 1 && n != 3 || ids.length != n) return n + "-component JPEG";
        if (iccWhy != null) return iccWhy;
        if (adobeTransform >= 0 && adobeTransform != (n == 3 ? 1 : 0)) return "Adobe JPEG with colour transform " + adobeTransform;
        if (n == 3 && !(ids[0] == 1 && ids[1] == 2 && ids[2] == 3)) return "JPEG component ids " + ids[0] + "," + ids[1] + "," + ids[2] + " (the colour space is guessed)";
        return null;
    }

    /** The transform byte of an Adobe APP14 segment ("Adobe", version, flags0, flags1, transform); -1 if short. */
    private static int adobeTransform(JPEGSegment s) throws IOException {
        try (InputStream d = s.segmentData()) {
            byte[] b = d.readAllBytes();
            return b.length > 11 ? b[11] & 0xff : -1;
        }
    }

    private final Path file;
    private final Header header;
    /** Decoded rows, then {@link #END} or the decoder's failure. */
    private final ArrayBlockingQueue<Object> rows = new ArrayBlockingQueue<>(AHEAD);
    /** Row arrays given back by {@link #next}, reused by the decoder. */
    private final ArrayBlockingQueue<byte[]> spare = new ArrayBlockingQueue<>(AHEAD + 2);
    private final Thread thread;
    /** How long {@link #close} waits for the decoding thread to stop. */
    private final long stopMillis;
    private volatile boolean closed;
    private volatile String warning;
    /** Rows read by {@link #next}. */
    private int next;
    /** Rows handed over by the decoding thread (written there only; read by {@link #close}'s message). */
    private volatile int decoded;
    private static final Object END = new Object();

    /** Thrown inside the reader's callback to stop a decode nobody reads any more. */
    private static final class Stopped extends RuntimeException {
        Stopped() {
            super("closed", null, false, false);
        }
    }

    private JpegRows(Path file, Header header, long stopMillis) {
        this.file = file;
        this.header = header;
        this.stopMillis = stopMillis;
        this.thread = Thread.ofPlatform().daemon().name("jpeg-rows " + file.getFileName()).start(this::decode);
    }

    /** Starts decoding {@code file}, whose header allows rows ({@link Header#whyWhole} is null). */
    static JpegRows open(Path file, Header header) {
        return open(file, header, STOP_MILLIS);
    }

    /** How long {@link #close} waits by default for a decoder to stop: far more than a scanline or an MCU row takes. */
    static final long STOP_MILLIS = 10_000;

    /** As {@link #open(Path, Header)}, {@link #close} waiting at most {@code stopMillis} for the decoder. */
    static JpegRows open(Path file, Header header, long stopMillis) {
        if (header.whyWhole() != null) throw new IllegalArgumentException(file + ": " + header.whyWhole() + " is decoded whole");
        return new JpegRows(file, header, stopMillis);
    }

    /** The JDK's own JPEG reader (TwelveMonkeys' reader is registered ahead of it and delegates to it). */
    private static ImageReader jdkReader() {
        for (Iterator<ImageReader> it = ImageIO.getImageReadersByFormatName("jpeg"); it.hasNext(); ) {
            ImageReader r = it.next();
            if (r.getOriginatingProvider().getClass().getName().equals("com.sun.imageio.plugins.jpeg.JPEGImageReaderSpi")) return r;
            r.dispose();
        }
        throw new IllegalStateException("the JDK's JPEG reader is not registered with ImageIO");
    }

    /** The decoding thread: one read into a {@link RowSink}, then {@link #END} or the failure. */
    private void decode() {
        Object last = END;
        try (ImageInputStream in = ImageIO.createImageInputStream(file.toFile())) {
            if (in == null) throw new IOException("cannot open");
            ImageReader reader = jdkReader();
            try {
                reader.setInput(in, true, true);
                if (reader.getWidth(0) != header.width() || reader.getHeight(0) != header.height()) throw new ImageFiles.BadImage(file, "changed while it was read");
                reader.addIIOReadWarningListener((r, w) -> {
                    if (warning == null) warning = w;
                });
                ImageReadParam param = reader.getDefaultReadParam();
                param.setDestination(RowSink.image(this));
                reader.read(0, param);
            } finally {
                reader.dispose();
            }
        } catch (Stopped s) {
            return;
        } catch (Throwable e) {
            last = e;
        }
        try {
            while (!closed && !rows.offer(last, 50, TimeUnit.MILLISECONDS)) { }
        } catch (InterruptedException ignored) {
            Thread.currentThread().interrupt();
        }
    }

    /** Called on the decoding thread with each scanline (one row of interleaved 8-bit samples). */
    private void accept(Raster line) {
        if (!(line.getSampleModel() instanceof PixelInterleavedSampleModel sm) || sm.getPixelStride() != header.channels() || line.getWidth() != header.width()
                || !java.util.Arrays.equals(sm.getBandOffsets(), java.util.stream.IntStream.range(0, header.channels()).toArray())) {
            throw new IllegalStateException("the JDK's JPEG reader gave a scanline of another layout (" + line.getSampleModel() + ")");
        }
        byte[] data = ((DataBufferByte) line.getDataBuffer()).getData();
        int bytes = header.width() * header.channels();
        byte[] row = spare.poll();
        if (row == null) row = new byte[bytes];
        System.arraycopy(data, 0, row, 0, bytes);
        try {
            while (!rows.offer(row, 50, TimeUnit.MILLISECONDS)) {
                if (closed) throw new Stopped();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new Stopped();
        }
    }

    @Override
    public void next(byte[] dst) {
        if (next >= header.height()) throw new IllegalStateException("row " + next + " of a " + header.height() + "-row JPEG");
        Object o;
        try {
            while ((o = rows.poll(1, TimeUnit.SECONDS)) == null) {
                if (!thread.isAlive() && rows.isEmpty()) throw new IllegalStateException(file + ": the JPEG decoder stopped at row " + next + " of " + header.height());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ImageFiles.BadImage(file, "interrupted at row " + next);
        }
        if (warning != null) throw new ImageFiles.BadImage(file, "damaged image: the decoder warns \"" + warning + "\" (--lenient reads it anyway)");
        if (o instanceof byte[] row) {
            System.arraycopy(row, 0, dst, 0, row.length);
            spare.offer(row);
            next++;
            return;
        }
        if (o == END) throw new ImageFiles.BadImage(file, "JPEG ends at row " + next + " of " + header.height());
        if (o instanceof ImageFiles.BadImage b) throw b;
        Throwable e = (Throwable) o;
        String m = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        throw new ImageFiles.BadImage(file, "damaged or unsupported image (" + m.lines().findFirst().orElse(m) + ") at row " + next);
    }

    /**
     * Stops the decoder (if rows are left) and waits for its thread, which gives the file back. A
     * decoder that does not stop in time (blocked reading a file that does not come, such as a pipe
     * or a hung network mount) is interrupted and reported: its thread and file stay open until
     * the read returns, and a caller must know that rather than believe them given back.
     */
    @Override
    public void close() {
        closed = true;
        rows.clear();
        boolean interrupted = false;
        try {
            thread.join(stopMillis);
        } catch (InterruptedException e) {
            interrupted = true;
        }
        if (thread.isAlive()) {
            thread.interrupt();
            if (interrupted) Thread.currentThread().interrupt();
            throw new IllegalStateException(file + ": the JPEG decoder did not stop within " + stopMillis + " ms of close (it had handed over "
                    + decoded + " of " + header.height() + " rows); its thread \"" + thread.getName() + "\" keeps the file open until its read returns");
        }
        if (interrupted) Thread.currentThread().interrupt();
    }


    /**
     * The raster of the destination image the JDK's reader decodes into: it has the JPEG's size but
     * holds one byte; the reader stores each scanline with {@link #setRect(int, int, Raster)}, which
     * passes it on. Any other write is refused, so a reader that wrote otherwise would fail loudly
     * rather than lose rows.
     */
    private static final class RowSink extends WritableRaster {
        private final JpegRows rows;

        private RowSink(JpegRows rows, int channels) {
            super(new PixelInterleavedSampleModel(DataBuffer.TYPE_BYTE, rows.header.width(), rows.header.height(), channels, rows.header.width() * channels,
                    java.util.stream.IntStream.range(0, channels).toArray()), new DataBufferByte(1), new Point(0, 0));
            this.rows = rows;
        }

        /** An image of the JPEG's size, sRGB or gray as the file is, over a {@link RowSink}. */
        static BufferedImage image(JpegRows rows) {
            int c = rows.header.channels();
            ColorSpace cs = ColorSpace.getInstance(c == 1 ? ColorSpace.CS_GRAY : ColorSpace.CS_sRGB);
            ComponentColorModel cm = new ComponentColorModel(cs, false, false, Transparency.OPAQUE, DataBuffer.TYPE_BYTE);
            return new BufferedImage(cm, new RowSink(rows, c), false, null);
        }

        @Override
        public void setRect(int dx, int dy, Raster src) {
            if (dx != 0 || dy != rows.decoded) throw new IllegalStateException("the JDK's JPEG reader wrote row " + dy + " at " + dx + ", expected row " + rows.decoded);
            rows.accept(src);
            rows.decoded++;
        }

        @Override
        public void setDataElements(int x, int y, Object inData) {
            throw refused();
        }

        @Override
        public void setPixels(int x, int y, int w, int h, int[] iArray) {
            throw refused();
        }

        @Override
        public void setSample(int x, int y, int b, int s) {
            throw refused();
        }

        @Override
        public WritableRaster createWritableChild(int parentX, int parentY, int w, int h, int childMinX, int childMinY, int[] bandList) {
            throw refused();
        }

        private static IllegalStateException refused() {
            return new IllegalStateException("the JDK's JPEG reader wrote its rows other than by setRect");
        }
    }
}
