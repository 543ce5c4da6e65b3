package dev.headroom.models.image;

import dev.headroom.core.image.FloatImage;
import dev.headroom.core.image.InputImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A PNG input decoded by rows as the tiler asks for them ({@link PngRows}): it holds the rows from
 * the lowest one not yet {@linkplain #release released} to the last one asked for, so host memory
 * is bounded by the tile rows in flight, not the image (an 8192x8192 RGB input held 201 MB as
 * samples). The floats are those {@link dev.headroom.core.image.SampleImage} gives for ImageIO's
 * samples, {@code sample / max}, bit for bit.
 *
 * <p>{@link #channels} and {@link #repeatChannel} are views with a decoder of their own, opened at
 * their first read (the colour rows of an RGBA input stream while its alpha is read whole for its
 * resample); closing the image closes them all. Not for concurrent use.
 */
public final class StreamedPng implements InputImage {
    private final Path file;
    private final PngRows.Header header;
    /** Channel c of this image is sample map[c] of a decoded pixel. */
    private final int[] map;
    private final int rowChannels, bytesPerSample;
    /** Views made from this image (closed with it), and the root that owns them all. */
    private final List<StreamedPng> views;
    private PngRows decoder;
    /** Decoded rows [low, next) in a ring; released rows' arrays are reused. */
    private byte[][] ring = new byte[16][];
    private int low, next, heldPeak;
    private final ArrayList<byte[]> spare = new ArrayList<>();

    private StreamedPng(Path file, PngRows.Header header, int[] map, List<StreamedPng> views) {
        this.file = file;
        this.header = header;
        this.map = map;
        this.rowChannels = header.channels();
        this.bytesPerSample = header.bitDepth() / 8;
        this.views = views;
    }

    /** The PNG {@code file} whose header allows rows ({@link PngRows.Header#whyWhole} is null); nothing is decoded yet. */
    static StreamedPng open(Path file, PngRows.Header header) {
        if (header.whyWhole() != null) throw new IllegalArgumentException(file + ": " + header.whyWhole() + " is decoded whole");
        return new StreamedPng(file, header, java.util.stream.IntStream.range(0, header.channels()).toArray(), new ArrayList<>());
    }

    @Override public int width() { return header.width(); }
    @Override public int height() { return header.height(); }
    @Override public int channels() { return map.length; }
    @Override public int bitDepth() { return header.bitDepth(); }

    /** The most rows this image held at once (what its memory is: rows x {@link PngRows.Header#rowBytes}). */
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
        if (y < low) throw new IllegalStateException("row " + y + " of " + file + " was released (rows from " + low + " are held)");
        if (y >= header.height()) throw new IndexOutOfBoundsException("row " + y + " of a " + header.height() + "-row image");
        while (next <= y) {
            if (decoder == null) decoder = openDecoder();
            if (next - low == ring.length) grow();
            byte[] r = spare.isEmpty() ? new byte[header.rowBytes()] : spare.removeLast();
            decoder.next(r);
            ring[next & (ring.length - 1)] = r;
            next++;
            heldPeak = Math.max(heldPeak, next - low);
        }
        if (next == header.height()) closeDecoder();
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

    private PngRows openDecoder() {
        try {
            PngRows d = PngRows.open(file);
            if (!sameShape(d.header())) {
                d.close();
                throw new ImageFiles.BadImage(file, "changed while it was read");
            }
            return d;
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": cannot read (" + e.getMessage() + ")", e);
        }
    }

    private boolean sameShape(PngRows.Header h) {
        return h.width() == header.width() && h.height() == header.height() && h.bitDepth() == header.bitDepth() && h.colorType() == header.colorType()
                && h.channels() == header.channels();
    }

    private void closeDecoder() {
        if (decoder != null) decoder.close();
        decoder = null;
    }

    @Override
    public StreamedPng channels(int from, int count) {
        int[] m = java.util.Arrays.copyOfRange(map, from, from + count);
        return view(m);
    }

    @Override
    public StreamedPng repeatChannel(int count) {
        int[] m = new int[count];
        java.util.Arrays.fill(m, map[0]);
        return view(m);
    }

    private StreamedPng view(int[] m) {
        StreamedPng v = new StreamedPng(file, header, m, views);
        views.add(v);
        return v;
    }

    /** The whole image as floats, from a decoder of its own (this image's rows are untouched). */
    @Override
    public FloatImage toFloat() {
        StreamedPng once = new StreamedPng(file, header, map, new ArrayList<>());
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
        for (StreamedPng v : List.copyOf(views)) if (v != this) v.closeDecoder();
    }
}
