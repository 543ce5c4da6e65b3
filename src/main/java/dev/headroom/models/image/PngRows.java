package dev.headroom.models.image;

import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.zip.Inflater;
import java.util.zip.InflaterInputStream;

/**
 * A non-interlaced PNG decoded one row at a time, top to bottom (PNG spec sections 9-11): the IDAT
 * chunks' payload through the JDK's {@link Inflater}, each row unfiltered against the one above.
 * Holds two rows, not the image. Rows come out as the samples ImageIO's PNG reader gives, in
 * (R, G, B, A) order: 8-bit samples as bytes, 16-bit ones as big-endian byte pairs, an opaque
 * palette expanded to RGB (a short palette padded with its last entry, as ImageIO pads it).
 *
 * <p>{@link Header#whyWhole} says which files this does not take (interlaced, below 8 bits, any
 * tRNS chunk: ImageIO turns it into alpha, and rounds a translucent palette's colours when it
 * expands them): those are decoded whole by ImageIO.
 */
final class PngRows implements RowDecoder {
    static final byte[] SIGNATURE = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

    /** IHDR and the chunks before the first IDAT that change what a row holds. */
    record Header(int width, int height, int bitDepth, int colorType, int interlace, int methods, byte[] palette, boolean transparency) {
        /** Channels a row gives: gray 1, gray+alpha 2, RGB 3, RGBA 4; an (opaque) palette 3. */
        int channels() {
            return switch (colorType) {
                case 0 -> 1;
                case 4 -> 2;
                case 2 -> 3;
                case 6 -> 4;
                default -> 3;
            };
        }

        /** Channels of a row as stored in the file (a palette index is one). */
        int fileChannels() {
            return colorType == 3 ? 1 : channels();
        }

        /** Bytes of one decoded row ({@link #channels} samples per pixel). */
        int rowBytes() {
            return Math.multiplyExact(width, channels() * (bitDepth / 8));
        }

        /** Why this file is decoded whole instead of by rows, or null when rows can be streamed. */
        String whyWhole() {
            if (interlace != 0) return "interlaced (Adam7) PNG";
            if (methods != 0) return "PNG compression or filter method other than 0";
            if (bitDepth != 8 && bitDepth != 16) return bitDepth + "-bit PNG samples";
            if (colorType == 3 && palette == null) return "palette PNG without a PLTE chunk";
            if (colorType != 3 && transparency) return "tRNS transparency on a non-palette PNG";
            // ImageIO's path draws such a palette into ABGR, which rounds translucent colours by a step: kept for identical pixels
            if (colorType == 3 && transparency) return "palette PNG with tRNS transparency";
            if (colorType != 0 && colorType != 2 && colorType != 3 && colorType != 4 && colorType != 6) return "PNG colour type " + colorType;
            return null;
        }
    }

    private final Path file;
    private final Header header;
    private final DataInputStream chunks;
    private final Inflater inflater = new Inflater();
    private final InputStream pixels;
    private final int bpp, fileRowBytes;
    /** The row above (zeros for the first) and the row being unfiltered; allocated at the first row. */
    private byte[] prev, cur;
    private int next;

    private PngRows(Path file, Header header, DataInputStream chunks, int firstIdatLength) {
        this.file = file;
        this.header = header;
        this.chunks = chunks;
        int bytesPerSample = header.bitDepth / 8;
        bpp = Math.max(1, header.fileChannels() * bytesPerSample);
        fileRowBytes = Math.multiplyExact(header.width, header.fileChannels() * bytesPerSample);
        pixels = new InflaterInputStream(new Idat(firstIdatLength), inflater, 1 << 16);
    }

    /** The header of {@code file} (up to its first IDAT chunk); the file is closed again. */
    static Header header(Path file) throws IOException {
        try (PngRows r = open(file)) {
            return r.header;
        }
    }

    /** Opens {@code file} positioned at its first row. */
    static PngRows open(Path file) throws IOException {
        DataInputStream in = new DataInputStream(new BufferedInputStream(Files.newInputStream(file), 1 << 16));
        try {
            if (!Arrays.equals(in.readNBytes(8), SIGNATURE)) throw new ImageFiles.BadImage(file, "not a PNG (bad signature)");
            int w = -1, h = -1, depth = 0, type = 0, interlace = 0, methods = 0;
            byte[] palette = null;
            boolean trns = false;
            while (true) {
                int len = in.readInt();
                String name = new String(in.readNBytes(4), StandardCharsets.ISO_8859_1);
                if (len < 0) throw new ImageFiles.BadImage(file, "PNG chunk " + name + " declares " + (len & 0xffffffffL) + " bytes");
                if (name.equals("IDAT")) {
                    if (w < 0) throw new ImageFiles.BadImage(file, "PNG has no IHDR chunk before its image data");
                    return new PngRows(file, new Header(w, h, depth, type, interlace, methods, palette, trns), in, len);
                }
                if (name.equals("IEND")) throw new ImageFiles.BadImage(file, "PNG has no image data (no IDAT chunk)");
                if (len > (1 << 24)) throw new ImageFiles.BadImage(file, "PNG chunk " + name + " of " + len + " bytes before the image data");
                byte[] data = in.readNBytes(len);
                if (data.length < len || in.skipBytes(4) < 4) throw new EOFException();
                switch (name) {
                    case "IHDR" -> {
                        if (len < 13) throw new ImageFiles.BadImage(file, "PNG IHDR chunk of " + len + " bytes");
                        var b = java.nio.ByteBuffer.wrap(data);
                        w = b.getInt();
                        h = b.getInt();
                        depth = data[8] & 0xff;
                        type = data[9] & 0xff;
                        interlace = data[12] & 0xff;
                        methods = (data[10] & 0xff) << 8 | (data[11] & 0xff);
                        if (w <= 0 || h <= 0) throw new ImageFiles.BadImage(file, "image has zero size (" + w + "x" + h + ")");
                    }
                    case "PLTE" -> palette = data;
                    case "tRNS" -> trns = true;
                    default -> { }
                }
            }
        } catch (IOException | RuntimeException e) {
            in.close();
            if (e instanceof EOFException) throw new ImageFiles.BadImage(file, "PNG ends before its image data (truncated)");
            throw e;
        }
    }

    Header header() {
        return header;
    }

    /** The next row's samples into {@code dst} ({@link Header#rowBytes} bytes). */
    @Override
    public void next(byte[] dst) {
        if (next >= header.height) throw new IllegalStateException("row " + next + " of a " + header.height + "-row PNG");
        if (cur == null) {   // not before: reading the header alone (to check the size) allocates nothing
            prev = new byte[fileRowBytes];
            cur = new byte[fileRowBytes];
        }
        try {
            int type = pixels.read();
            if (type < 0 || pixels.readNBytes(cur, 0, fileRowBytes) < fileRowBytes) {
                throw new ImageFiles.BadImage(file, "PNG image data ends at row " + next + " of " + header.height + " (truncated)");
            }
            unfilter(type, cur, prev, fileRowBytes, bpp);
        } catch (java.util.zip.ZipException e) {
            throw new ImageFiles.BadImage(file, "damaged PNG image data at row " + next + " (" + e.getMessage() + ")");
        } catch (IOException e) {
            throw new ImageFiles.BadImage(file, "cannot read PNG image data at row " + next + " (" + e.getMessage() + ")");
        }
        if (header.colorType == 3) expand(cur, dst);
        else System.arraycopy(cur, 0, dst, 0, fileRowBytes);
        byte[] t = prev;
        prev = cur;
        cur = t;
        next++;
    }

    /** Palette indices to RGB (ImageIO pads a short palette with its last entry). */
    private void expand(byte[] idx, byte[] dst) {
        byte[] pal = header.palette;
        int entries = pal.length / 3;
        for (int x = 0, d = 0; x < header.width; x++, d += 3) {
            int i = idx[x] & 0xff;
            int p = Math.min(i, entries - 1) * 3;
            dst[d] = pal[p];
            dst[d + 1] = pal[p + 1];
            dst[d + 2] = pal[p + 2];
        }
    }

    private ImageFiles.BadImage badFilter(int type) {
        return new ImageFiles.BadImage(file, "damaged PNG: row " + next + " has filter type " + type);
    }

    /** Undoes a row's filter in place (PNG spec section 9.2); {@code prev} is the row above, zeros for the first. */
    private void unfilter(int type, byte[] row, byte[] prev, int len, int bpp) {
        switch (type) {
            case 0 -> { }
            case 1 -> {
                for (int i = bpp; i < len; i++) row[i] += row[i - bpp];
            }
            case 2 -> {
                for (int i = 0; i < len; i++) row[i] += prev[i];
            }
            case 3 -> {
                for (int i = 0; i < bpp; i++) row[i] += (byte) ((prev[i] & 0xff) >>> 1);
                for (int i = bpp; i < len; i++) row[i] += (byte) (((row[i - bpp] & 0xff) + (prev[i] & 0xff)) >>> 1);
            }
            case 4 -> {
                for (int i = 0; i < bpp; i++) row[i] += prev[i];
                for (int i = bpp; i < len; i++) row[i] += (byte) PngFilters.paeth(row[i - bpp] & 0xff, prev[i] & 0xff, prev[i - bpp] & 0xff);
            }
            default -> throw badFilter(type);
        }
    }

    @Override
    public void close() {
        inflater.end();
        try {
            chunks.close();
        } catch (IOException ignored) {
            // read-only: nothing is lost
        }
    }

    /** The payload of consecutive IDAT chunks as one stream (their CRCs are checked before, by {@link PngChunks}, unless lenient). */
    private final class Idat extends InputStream {
        private int left;
        private boolean done;

        Idat(int firstLength) {
            left = firstLength;
        }

        /** Moves to the next IDAT chunk when this one is used up; false after the last. */
        private boolean more() throws IOException {
            while (left == 0 && !done) {
                chunks.skipNBytes(4);   // CRC
                int len = chunks.readInt();
                String name = new String(chunks.readNBytes(4), StandardCharsets.ISO_8859_1);
                if (!name.equals("IDAT") || len < 0) {
                    done = true;
                    return false;
                }
                left = len;
            }
            return !done;
        }

        @Override
        public int read() throws IOException {
            if (!more()) return -1;
            left--;
            return chunks.read();
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (len == 0) return 0;
            if (!more()) return -1;
            int n = chunks.read(b, off, Math.min(len, left));
            if (n < 0) throw new EOFException();
            left -= n;
            return n;
        }
    }
}
