package dev.headroom.models.image;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.StandardOpenOption;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Future;
import java.util.zip.Deflater;

/**
 * A streaming TIFF encoder: baseline TIFF, little-endian, chunky samples in strips of about
 * {@link #STRIP_BYTES}, each strip compressed with Deflate (compression 8, zlib streams), 8-bit
 * ones after horizontal differencing (predictor 2), on its own thread of {@link PngWriter#POOL}, and written as
 * soon as it and the strips before it are done. The directory (with the strips' offsets and byte
 * counts) goes at the end and the header is pointed at it by {@link #finish}, so memory holds a
 * strip being filled and the strips being compressed, never the image. Classic TIFF addresses
 * 4 GiB: a file that would grow beyond that fails with a clear message (PNG has no such limit).
 *
 * <p>Samples are rounded as {@code round(clamp(v, 0, 1) * max)}, as the PNG writer rounds them;
 * 16-bit samples are stored little-endian, as the header says.
 */
final class TiffWriter extends RowWriter {
    static final int STRIP_BYTES = 1 << 20;
    static final int MAX_PENDING = 64;
    private static final long CLASSIC_LIMIT = 0xFFFF_FFFFL;

    private final OutputFile file;
    private final FileChannel out;
    private final int rowsPerStrip, level;
    private final ArrayDeque<Future<byte[]>> pending = new ArrayDeque<>();
    private final List<long[]> strips = new ArrayList<>();   // {offset, byte count}
    /** The strip being filled, and how many rows it has. */
    private byte[] strip;
    private int stripRows;
    private long position = 8;
    private boolean finished;

    TiffWriter(OutputFile file, int width, int height, int channels, int bitDepth, int level) throws IOException {
        super(width, height, channels, bitDepth);
        this.file = file;
        this.rowsPerStrip = Math.max(1, Math.min(height, STRIP_BYTES / rowBytes));
        this.level = level;
        FileChannel o = null;
        try {
            o = FileChannel.open(file.temp(), StandardOpenOption.WRITE);
            // "II", 42, and the directory's offset, filled in by finish
            o.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).put((byte) 'I').put((byte) 'I').putShort((short) 42).putInt(0).flip(), 0);
        } catch (IOException | RuntimeException e) {
            if (o != null) o.close();
            file.close();
            throw e;
        }
        this.out = o;
    }

    @Override
    public void rows(float[] data, int offset, int rows) {
        float max = bytesPerSample == 1 ? 255f : 65535f;
        int n = width * channels;
        band(rows, (y, dst, at) -> {
            int from = offset + y * n;
            if (bytesPerSample == 1) {
                for (int i = 0; i < n; i++) dst[at + i] = (byte) Math.round(Math.clamp(data[from + i], 0f, 1f) * max);
            } else {
                for (int i = 0; i < n; i++) {
                    int v = Math.round(Math.clamp(data[from + i], 0f, 1f) * max);
                    dst[at + 2 * i] = (byte) v;
                    dst[at + 2 * i + 1] = (byte) (v >>> 8);
                }
            }
        });
    }

    @Override
    public int sampleBits() {
        return bytesPerSample * 8;
    }

    /** Rows as big-endian samples (a device's output): copied, 16-bit ones swapped to the file's order. */
    @Override
    public void sampleRows(byte[] samples, int offset, int rows) {
        band(rows, (y, dst, at) -> {
            int from = offset + y * rowBytes;
            if (bytesPerSample == 1) {
                System.arraycopy(samples, from, dst, at, rowBytes);
            } else {
                for (int i = 0; i < rowBytes; i += 2) {
                    dst[at + i] = samples[from + i + 1];
                    dst[at + i + 1] = samples[from + i];
                }
            }
        });
    }

    private void band(int rows, RowSamples source) {
        checkBand(rows);
        long t0 = System.nanoTime();
        for (int y = 0; y < rows; y++) {
            if (strip == null) strip = new byte[Math.min(rowsPerStrip, height - rowsGiven) * rowBytes];
            source.put(y, strip, stripRows * rowBytes);
            stripRows++;
            rowsGiven++;
            if (stripRows * rowBytes == strip.length) {
                byte[] full = strip;
                strip = null;
                stripRows = 0;
                pending.add(PngWriter.POOL.submit(() -> compress(full)));
            }
        }
        encodeNanos.addAndGet(System.nanoTime() - t0);
        try {
            drain(false);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Predictor 2 for 8-bit samples (each sample less the same sample of the pixel before, per
     * row; the JDK's TIFF reader has no predictor for 16-bit ones, so those go as they are), then
     * a zlib stream.
     */
    private byte[] compress(byte[] raw) {
        long t0 = System.nanoTime();
        int rows = raw.length / rowBytes;
        if (bytesPerSample == 1) {
            for (int r = 0; r < rows; r++) {
                int base = r * rowBytes;
                for (int i = rowBytes - 1; i >= channels; i--) raw[base + i] -= raw[base + i - channels];
            }
        }
        Deflater d = new Deflater(level);
        try {
            d.setInput(raw);
            d.finish();
            java.io.ByteArrayOutputStream z = new java.io.ByteArrayOutputStream(raw.length / 2 + 64);
            byte[] buf = new byte[64 << 10];
            while (!d.finished()) z.write(buf, 0, d.deflate(buf));
            encodeNanos.addAndGet(System.nanoTime() - t0);
            return z.toByteArray();
        } finally {
            d.end();
        }
    }

    /** Writes the compressed strips at the head of the queue: all with {@code all}, else those done, or while too many wait. */
    private void drain(boolean all) throws IOException {
        while (!pending.isEmpty() && (all || pending.size() > MAX_PENDING || pending.peek().isDone())) {
            byte[] z = result(pending.poll(), "TIFF");
            long t0 = System.nanoTime();
            position += position & 1;   // strips start on a word boundary, as TIFF recommends
            if (position + z.length > CLASSIC_LIMIT) {
                throw new ImageFiles.BadImage("a " + width + "x" + height + " TIFF is beyond the 4 GiB a classic TIFF file can address; write PNG");
            }
            strips.add(new long[] {position, z.length});
            writeFully(ByteBuffer.wrap(z), position);
            position += z.length;
            writeNanos += System.nanoTime() - t0;
        }
    }

    private void writeFully(ByteBuffer b, long at) throws IOException {
        while (b.hasRemaining()) at += out.write(b, at);
    }

    @Override
    public void finish() throws IOException {
        checkComplete("TIFF");
        drain(true);
        long t0 = System.nanoTime();
        position += position & 1;
        int n = strips.size();
        boolean alpha = channels == 2 || channels == 4;
        // arrays that do not fit an entry's 4 bytes go after the directory
        int entries = 11 + (alpha ? 1 : 0);
        long dir = position, after = dir + 2 + 12L * entries + 4;
        long bitsAt = after, offsetsAt = bitsAt + 2L * channels, countsAt = offsetsAt + 4L * n, end = countsAt + 4L * n;
        if (end > CLASSIC_LIMIT) throw new ImageFiles.BadImage("a " + width + "x" + height + " TIFF is beyond the 4 GiB a classic TIFF file can address; write PNG");
        ByteBuffer b = ByteBuffer.allocate(Math.toIntExact(end - dir)).order(ByteOrder.LITTLE_ENDIAN);
        b.putShort((short) entries);
        entry(b, 256, 4, 1, width);                                          // ImageWidth
        entry(b, 257, 4, 1, height);                                         // ImageLength
        entry(b, 258, 3, channels, channels <= 2 ? bytesPerSample * 8 | (channels == 2 ? bytesPerSample * 8 << 16 : 0) : (int) bitsAt);
        entry(b, 259, 3, 1, 8);                                              // Compression: Deflate (zlib)
        entry(b, 262, 3, 1, channels <= 2 ? 1 : 2);                          // Photometric: BlackIsZero or RGB
        entry(b, 273, 4, n, n == 1 ? (int) strips.getFirst()[0] : (int) offsetsAt);   // StripOffsets
        entry(b, 277, 3, 1, channels);                                       // SamplesPerPixel
        entry(b, 278, 4, 1, rowsPerStrip);                                   // RowsPerStrip
        entry(b, 279, 4, n, n == 1 ? (int) strips.getFirst()[1] : (int) countsAt);    // StripByteCounts
        entry(b, 284, 3, 1, 1);                                              // PlanarConfiguration: chunky
        entry(b, 317, 3, 1, bytesPerSample == 1 ? 2 : 1);                    // Predictor: horizontal differencing for 8 bits
        if (alpha) entry(b, 338, 3, 1, 2);                                   // ExtraSamples: unassociated alpha
        b.putInt(0);                                                         // no next directory
        for (int c = 0; c < channels; c++) b.putShort((short) (bytesPerSample * 8));
        for (long[] s : strips) b.putInt((int) s[0]);
        for (long[] s : strips) b.putInt((int) s[1]);
        writeFully(b.flip(), dir);
        writeFully(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt((int) dir).flip(), 4);
        out.close();
        file.commit();
        finished = true;
        writeNanos += System.nanoTime() - t0;
    }

    /** A directory entry: tag, type (3 SHORT, 4 LONG), count, and the value (left-justified in its 4 bytes) or the offset of the values. */
    private static void entry(ByteBuffer b, int tag, int type, int count, int value) {
        b.putShort((short) tag).putShort((short) type).putInt(count);
        if (type == 3 && count == 1) b.putShort((short) value).putShort((short) 0);
        else b.putInt(value);
    }

    @Override
    public void close() throws IOException {
        if (!finished) abandon(pending, out, file);
    }
}
