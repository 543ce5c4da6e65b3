package dev.headroom.models.image;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayDeque;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.zip.Adler32;
import java.util.zip.CRC32;
import java.util.zip.Deflater;

/**
 * A streaming PNG encoder that deflates on all cores, as pigz does. Each band of rows is cut into
 * pieces of about {@link #PIECE_BYTES} of scanlines; each piece is converted to 8 or 16 bit
 * samples, filtered (per row the filter with the least sum of absolute values, libpng's
 * heuristic) and deflated on its own thread with a sync flush, which ends it on a byte boundary
 * with no final block, so the pieces concatenate into one deflate stream (an empty final block
 * closes it). The zlib trailer's Adler-32 is combined from the pieces' own. Unlike pigz, a piece
 * does not take the previous piece's last 32 KiB as its dictionary: pieces of 1 MiB lose well
 * under 1% of size to that, and need nothing from each other. Each piece is written as its own
 * IDAT chunk, in order, as soon as it and the pieces before it are done; at most
 * {@link #MAX_PENDING} pieces wait, so memory is bounded by a band and that.
 *
 * <p>The caller's rows are copied into the piece's own buffer ({@link EncodeBuffers}, within a
 * budget shared by every writer) on the caller's thread, so a band returns without waiting for an
 * encoding thread; the caller waits only when the encoders are a whole budget behind.
 *
 * <p>Samples are rounded as {@code round(clamp(v, 0, 1) * max)}, as {@link ImageFiles#writePng} does.
 */
final class PngWriter extends RowWriter {
    static final int PIECE_BYTES = 1 << 20;
    static final int MAX_PENDING = 256;
    private static final byte[] SIGNATURE = {(byte) 137, 80, 78, 71, 13, 10, 26, 10};
    private static final int ADLER_BASE = 65521;

    /** Encoding threads, one per core, shared by all writers; daemons, so an idle pool never holds the JVM. */
    static final ExecutorService POOL = Executors.newFixedThreadPool(Runtime.getRuntime().availableProcessors(), r -> {
        Thread t = new Thread(r, "png-deflate");
        t.setDaemon(true);
        return t;
    });
    /** Rows waiting for those threads, every writer's. */
    static final EncodeBuffers BUFFERS = EncodeBuffers.forProcess(Runtime.getRuntime().availableProcessors(), PIECE_BYTES);

    private final OutputFile file;
    private final OutputStream out;
    private final int level;
    private final ArrayDeque<Future<Piece>> pending = new ArrayDeque<>();
    /** The last row of the previous band as samples (filters look one row up), or null before the first. */
    private byte[] above;
    private long adler = 1;
    private boolean first = true, finished;
    /** Set when the file is given up: pieces not yet started give their buffers back without encoding. */
    private volatile boolean abandoned;
    /** Time this writer's caller waited for room in {@link #BUFFERS}. */
    private long waitNanos;

    /** One deflated piece: its bytes, the Adler-32 and length of the filtered bytes it holds. */
    private record Piece(byte[] data, int length, long adler, long rawLength) {}

    PngWriter(OutputFile file, int width, int height, int channels, int bitDepth, int level) throws IOException {
        super(width, height, channels, bitDepth);
        this.file = file;
        this.level = level;
        OutputStream o = null;
        try {
            o = new BufferedOutputStream(Files.newOutputStream(file.temp()), 1 << 20);
            o.write(SIGNATURE);
            var ihdr = java.nio.ByteBuffer.allocate(13);
            ihdr.putInt(width).putInt(height).put((byte) bitDepth).put((byte) colorType(channels)).put((byte) 0).put((byte) 0).put((byte) 0);
            chunk(o, "IHDR", ihdr.array(), 13);
        } catch (IOException | RuntimeException e) {
            if (o != null) o.close();
            file.close();
            throw e;
        }
        this.out = o;
    }

    private static int colorType(int channels) {
        return switch (channels) {
            case 1 -> 0;
            case 2 -> 4;
            case 3 -> 2;
            default -> 6;
        };
    }

    @Override
    public void rows(float[] data, int offset, int rows) {
        int floatsPerRow = width * channels;
        band(rows, (y, raw, at) -> sample(data, offset + y * floatsPerRow, raw, at));
    }

    @Override
    public int sampleBits() {
        return bytesPerSample * 8;
    }

    /** Rows already as this file's big-endian samples (a device's output): copied, not converted. */
    @Override
    public void sampleRows(byte[] samples, int offset, int rows) {
        band(rows, (y, raw, at) -> System.arraycopy(samples, offset + y * rowBytes, raw, at, rowBytes));
    }

    /** Encodes a band of {@code rows} rows; returns once every row has been copied from the caller's array. */
    private void band(int rows, RowSamples source) {
        checkBand(rows);
        PngWarmup.encoded((long) rows * width * channels);
        int per = Math.max(1, PIECE_BYTES / rowBytes);
        for (int a = 0; a < rows; a += per) {
            int from = a, to = Math.min(rows, a + per), bytes = (to - from + 1) * rowBytes;
            // rows from-1 .. to-1 as samples: row from-1 (or the band before's last) is the one the filters look up to
            long w0 = System.nanoTime();
            byte[] raw = BUFFERS.take(bytes);
            waitNanos += System.nanoTime() - w0;
            boolean hasAbove = from > 0 || above != null;
            long t0 = System.nanoTime();
            Future<Piece> piece;
            try {
                if (from > 0) source.put(from - 1, raw, 0);
                else if (above != null) System.arraycopy(above, 0, raw, 0, rowBytes);
                for (int y = from; y < to; y++) source.put(y, raw, (y - from + 1) * rowBytes);
                encodeNanos.addAndGet(System.nanoTime() - t0);
                piece = POOL.submit(() -> encode(raw, to - from, hasAbove));   // from here the task gives the buffer back
            } catch (Throwable t) {
                BUFFERS.give(raw);
                throw t;
            }
            pending.add(piece);
        }
        above = new byte[rowBytes];
        source.put(rows - 1, above, 0);
        rowsGiven += rows;
        try {
            drain(false);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** On an encoding thread: a piece's rows filtered (its buffer then given back) and deflated; nothing once the file is given up. */
    private Piece encode(byte[] raw, int rows, boolean hasAbove) {
        long t0 = System.nanoTime();
        boolean given = false;
        try {
            if (abandoned) return null;
            Scratch scratch = Scratch.get();
            int length = filter(raw, rows, hasAbove, scratch.filtered(rows * (rowBytes + 1)));
            BUFFERS.give(raw);
            given = true;
            return deflate(scratch, length);
        } finally {
            if (!given) BUFFERS.give(raw);
            encodeNanos.addAndGet(System.nanoTime() - t0);
        }
    }

    /** One row of floats to big-endian 8 or 16 bit samples at {@code raw[at]}. */
    private void sample(float[] data, int from, byte[] raw, int at) {
        SampleBytes.round(data, from, width * channels, bytesPerSample, raw, at);
    }

    /** Filters rows 1..rows of raw (row 0 is the row above, when hasAbove) into {@code filtered}; returns its length. */
    private int filter(byte[] raw, int rows, boolean hasAbove, byte[] filtered) {
        int bpp = channels * bytesPerSample;
        for (int r = 0; r < rows; r++) {
            int cur = (r + 1) * rowBytes, prev = r > 0 || hasAbove ? r * rowBytes : -1;
            PngFilters.best(raw, cur, prev, rowBytes, bpp, level == 0, filtered, r * (rowBytes + 1));
        }
        return rows * (rowBytes + 1);
    }

    /** Deflates the scratch's first {@code length} filtered bytes with a sync flush. */
    private Piece deflate(Scratch scratch, int length) {
        byte[] filtered = scratch.filtered(length);
        Adler32 a = new Adler32();
        a.update(filtered, 0, length);
        Deflater d = new Deflater(level, true);
        try {
            d.setInput(filtered, 0, length);
            byte[] buf = scratch.out(length / 2 + 1024);
            int len = 0;
            while (true) {
                int n = d.deflate(buf, len, buf.length - len, Deflater.SYNC_FLUSH);
                len += n;
                if (len < buf.length) break;   // a sync flush that did not fill the buffer is complete
                buf = scratch.grownOut(len);
            }
            return new Piece(java.util.Arrays.copyOf(buf, len), len, a.getValue(), length);
        } finally {
            d.end();
        }
    }

    /**
     * Each encoding thread's working buffers, kept between pieces (the rows come in an
     * {@link EncodeBuffers} buffer): allocating them per piece made gigabytes of garbage per big
     * image (a 16384-pixel-wide band is hundreds of 1 MiB pieces), which the collector let pile up
     * as resident memory.
     */
    private static final class Scratch {
        private static final ThreadLocal<Scratch> MINE = ThreadLocal.withInitial(Scratch::new);
        private byte[] filtered = new byte[0], out = new byte[0];

        static Scratch get() {
            return MINE.get();
        }

        byte[] filtered(int n) {
            if (filtered.length < n) filtered = new byte[n];
            return filtered;
        }

        byte[] out(int n) {
            if (out.length < n) out = new byte[n];
            return out;
        }

        /** out at twice its size, its first {@code kept} bytes kept. */
        byte[] grownOut(int kept) {
            out = java.util.Arrays.copyOf(out, Math.max(out.length * 2, kept + 1024));
            return out;
        }
    }

    /** Writes the finished pieces at the head of the queue; all of them with {@code all}, or when too many wait. */
    private void drain(boolean all) throws IOException {
        while (!pending.isEmpty() && (all || pending.size() > MAX_PENDING || pending.peek().isDone())) {
            Piece p = result(pending.poll(), "PNG");
            long t0 = System.nanoTime();
            adler = combine(adler, p.adler(), p.rawLength());
            if (first) {
                // zlib header: deflate, 32 KiB window; FLEVEL from the level; FCHECK makes it a multiple of 31
                int flg = level <= 1 ? 0x01 : level <= 5 ? 0x5E : level == 6 ? 0x9C : 0xDA;
                byte[] withHeader = new byte[p.length() + 2];
                withHeader[0] = 0x78;
                withHeader[1] = (byte) flg;
                System.arraycopy(p.data(), 0, withHeader, 2, p.length());
                chunk(out, "IDAT", withHeader, withHeader.length);
                first = false;
            } else if (p.length() > 0) {
                chunk(out, "IDAT", p.data(), p.length());
            }
            writeNanos += System.nanoTime() - t0;
        }
    }

    /** Adler-32 of A then B from each one's (zlib's adler32_combine). */
    static long combine(long adlerA, long adlerB, long lengthB) {
        long rem = lengthB % ADLER_BASE;
        long sum1 = adlerA & 0xffff;
        long sum2 = rem * sum1 % ADLER_BASE;
        sum1 += (adlerB & 0xffff) + ADLER_BASE - 1;
        sum2 += ((adlerA >>> 16) & 0xffff) + ((adlerB >>> 16) & 0xffff) + ADLER_BASE - rem;
        if (sum1 >= ADLER_BASE) sum1 -= ADLER_BASE;
        if (sum1 >= ADLER_BASE) sum1 -= ADLER_BASE;
        if (sum2 >= 2L * ADLER_BASE) sum2 -= 2L * ADLER_BASE;
        if (sum2 >= ADLER_BASE) sum2 -= ADLER_BASE;
        return sum1 | (sum2 << 16);
    }

    private static void chunk(OutputStream o, String type, byte[] data, int length) throws IOException {
        byte[] t = type.getBytes(StandardCharsets.US_ASCII);
        CRC32 crc = new CRC32();
        crc.update(t);
        crc.update(data, 0, length);
        byte[] head = java.nio.ByteBuffer.allocate(8).putInt(length).put(t).array();
        o.write(head);
        o.write(data, 0, length);
        o.write(java.nio.ByteBuffer.allocate(4).putInt((int) crc.getValue()).array());
    }

    @Override
    public long waitNanos() {
        return waitNanos;
    }

    @Override
    public void finish() throws IOException {
        checkComplete("PNG");
        drain(true);
        long t0 = System.nanoTime();
        // an empty final fixed-Huffman block (BFINAL=1, BTYPE=01, end-of-block), then the Adler-32
        byte[] tail = java.nio.ByteBuffer.allocate(6).put((byte) 0x03).put((byte) 0x00).putInt((int) adler).array();
        chunk(out, "IDAT", tail, tail.length);
        chunk(out, "IEND", new byte[0], 0);
        out.close();
        file.commit();
        finished = true;
        writeNanos += System.nanoTime() - t0;
    }

    @Override
    public void close() throws IOException {
        if (finished) return;
        // not cancelled: a piece waiting for a thread holds a buffer of the shared budget, which only its task gives back
        abandoned = true;
        pending.clear();
        abandon(pending, out, file);
    }
}
