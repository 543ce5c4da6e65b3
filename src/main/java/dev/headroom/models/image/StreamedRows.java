package dev.headroom.models.image;

import dev.headroom.core.image.FloatImage;
import dev.headroom.core.image.InputImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * An input decoded by rows as the tiler asks for them (a PNG by {@link PngRows}, a JPEG by
 * {@link JpegRows}): it holds the rows from the lowest one not yet {@linkplain #release released}
 * to the last one asked for, so host memory is bounded by the tile rows in flight, not the image
 * (an 8192x8192 RGB input held 201 MB as samples). The floats are those
 * {@link dev.headroom.core.image.SampleImage} gives for ImageIO's samples, {@code sample / max},
 * bit for bit.
 *
 * <p>{@link #channels} and {@link #repeatChannel} are views with a decoder of their own, opened at
 * their first read (an RGBA input's colour rows stream to the tiler while its alpha view streams
 * to its resample a few rows at a time, {@code Resample.Rows}); closing the image closes them all.
 * Not for concurrent use.
 */
public final class StreamedRows implements InputImage {
    /** Opens a decoder at the file's first row. */
    interface Opener {
        RowDecoder open() throws IOException;
    }

    /** What a file's rows are: its size, the samples a decoded pixel has, their depth (8 or 16), and how to decode them. */
    record Source(Path file, int width, int height, int channels, int bitDepth, Opener opener) {
        int rowBytes() {
            return Math.multiplyExact(width, channels * (bitDepth / 8));
        }
    }

    private final Source source;
    /** Channel c of this image is sample map[c] of a decoded pixel. */
    private final int[] map;
    private final int rowChannels, bytesPerSample;
    /** Views made from this image (closed with it), and the root that owns them all. */
    private final List<StreamedRows> views;
    private RowDecoder decoder;
    /** Decoded rows [low, next) in a ring; released rows' arrays are reused. */
    private byte[][] ring = new byte[16][];
    private int low, next, heldPeak;
    private final ArrayList<byte[]> spare = new ArrayList<>();

    private StreamedRows(Source source, int[] map, List<StreamedRows> views) {
        this.source = source;
        this.map = map;
        this.rowChannels = source.channels();
        this.bytesPerSample = source.bitDepth() / 8;
        this.views = views;
    }

    private static StreamedRows of(Source source) {
        return new StreamedRows(source, java.util.stream.IntStream.range(0, source.channels()).toArray(), new ArrayList<>());
    }

    /** The PNG {@code file} whose header allows rows ({@link PngRows.Header#whyWhole} is null); nothing is decoded yet. */
    static StreamedRows png(Path file, PngRows.Header header) {
        if (header.whyWhole() != null) throw new IllegalArgumentException(file + ": " + header.whyWhole() + " is decoded whole");
        return of(new Source(file, header.width(), header.height(), header.channels(), header.bitDepth(), () -> {
            PngRows d = PngRows.open(file);
            if (!sameShape(d.header(), header)) {
                d.close();
                throw new ImageFiles.BadImage(file, "changed while it was read");
            }
            return d;
        }));
    }

    /** The baseline JPEG {@code file} whose header allows rows ({@link JpegRows.Header#whyWhole} is null); nothing is decoded yet. */
    static StreamedRows jpeg(Path file, JpegRows.Header header) {
        if (header.whyWhole() != null) throw new IllegalArgumentException(file + ": " + header.whyWhole() + " is decoded whole");
        return of(new Source(file, header.width(), header.height(), header.channels(), 8, () -> JpegRows.open(file, header)));
    }

    @Override public int width() { return source.width(); }
    @Override public int height() { return source.height(); }
    @Override public int channels() { return map.length; }
    @Override public int bitDepth() { return source.bitDepth(); }

    /** The most rows this image held at once (what its memory is: rows x width x channels x bytes per sample). */
    public int heldRowsPeak() {
        return heldPeak;
    }

    @Override
    public void floats(int y, int x, int n, float[] dst, int off) {
        byte[] row = row(y);
        int c = map.length;
        for (int ch = 0; ch < c; ch++) {
            int from = x * rowChannels + map[ch];
            if (bytesPerSample == 1) {
                float max = 255;
                for (int i = ch; i < n * c; i += c, from += rowChannels) dst[off + i] = (row[from] & 0xff) / max;
            } else {
                float max = 65535;
                for (int i = ch; i < n * c; i += c, from += rowChannels) dst[off + i] = (((row[2 * from] & 0xff) << 8) | (row[2 * from + 1] & 0xff)) / max;
            }
        }
    }

    /** Row y, decoding down to it; a row above the released ones cannot come back (the tiler only moves down). */
    private byte[] row(int y) {
        if (y < low) throw new IllegalStateException("row " + y + " of " + source.file() + " was released (rows from " + low + " are held)");
        if (y >= source.height()) throw new IndexOutOfBoundsException("row " + y + " of a " + source.height() + "-row image");
        while (next <= y) {
            if (decoder == null) decoder = openDecoder();
            if (next - low == ring.length) grow();
            byte[] r = spare.isEmpty() ? new byte[source.rowBytes()] : spare.removeLast();
            decoder.next(r);
            ring[next & (ring.length - 1)] = r;
            next++;
            heldPeak = Math.max(heldPeak, next - low);
        }
        if (next == source.height()) closeDecoder();
        return ring[y & (ring.length - 1)];
    }

    private void grow() {
        byte[][] bigger = new byte[ring.length * 2][];
        for (int y = low; y < next; y++) bigger[y & (bigger.length - 1)] = ring[y & (ring.length - 1)];
        ring = bigger;
    }

    /** Drops the decoded rows above {@code below} (rows not decoded yet are not skipped: the file is read in order). */
    @Override
    public void release(int below) {
        for (; low < Math.min(below, next); low++) {
            int i = low & (ring.length - 1);
            if (spare.size() < 4) spare.add(ring[i]);
            ring[i] = null;
        }
    }

    private RowDecoder openDecoder() {
        try {
            return source.opener().open();
        } catch (IOException e) {
            throw new UncheckedIOException(source.file() + ": cannot read (" + e.getMessage() + ")", e);
        }
    }

    private static boolean sameShape(PngRows.Header h, PngRows.Header header) {
        return h.width() == header.width() && h.height() == header.height() && h.bitDepth() == header.bitDepth() && h.colorType() == header.colorType()
                && h.channels() == header.channels();
    }

    private void closeDecoder() {
        if (decoder != null) decoder.close();
        decoder = null;
    }

    @Override
    public StreamedRows channels(int from, int count) {
        int[] m = java.util.Arrays.copyOfRange(map, from, from + count);
        return view(m);
    }

    @Override
    public StreamedRows repeatChannel(int count) {
        int[] m = new int[count];
        java.util.Arrays.fill(m, map[0]);
        return view(m);
    }

    private StreamedRows view(int[] m) {
        StreamedRows v = new StreamedRows(source, m, views);
        views.add(v);
        return v;
    }

    /** The whole image as floats, from a decoder of its own (this image's rows are untouched). */
    @Override
    public FloatImage toFloat() {
        StreamedRows once = new StreamedRows(source, map, new ArrayList<>());
        try {
            FloatImage out = FloatImage.blank(width(), height(), channels(), bitDepth());
            int stride = width() * channels();
            for (int y = 0; y < height(); y++) {
                once.floats(y, 0, width(), out.data(), y * stride);
                once.release(y);
            }
            return out;
        } finally {
            once.close();
        }
    }

    @Override
    public void close() {
        closeDecoder();
        for (StreamedRows v : List.copyOf(views)) if (v != this) v.closeDecoder();
    }
}
