package dev.headroom.models.image;

import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.CRC32;

/**
 * Walks a PNG's chunks before it is decoded and checks each one's CRC and that the file reaches
 * IEND: ImageIO's PNG reader checks neither, so a damaged file decoded to wrong pixels without a
 * word. One pass over the file, 64 KiB at a time.
 */
final class PngChunks {
    private static final byte[] SIGNATURE = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

    private PngChunks() {}

    static void check(Path file) throws IOException {
        try (DataInputStream in = new DataInputStream(new BufferedInputStream(Files.newInputStream(file), 1 << 16))) {
            byte[] sig = in.readNBytes(8);
            if (!java.util.Arrays.equals(sig, SIGNATURE)) throw new ImageFiles.BadImage(file, "not a PNG (bad signature)");
            byte[] buf = new byte[1 << 16];
            while (true) {
                long len;
                byte[] type = new byte[4];
                try {
                    len = in.readInt() & 0xffffffffL;
                    in.readFully(type);
                } catch (EOFException e) {
                    throw new ImageFiles.BadImage(file, "PNG ends before its IEND chunk (truncated; --lenient reads what is there)");
                }
                String name = new String(type, StandardCharsets.ISO_8859_1);
                if (len > Integer.MAX_VALUE) throw new ImageFiles.BadImage(file, "PNG chunk " + printable(name) + " declares " + len + " bytes");
                CRC32 crc = new CRC32();
                crc.update(type);
                long left = len;
                try {
                    while (left > 0) {
                        int n = in.read(buf, 0, (int) Math.min(buf.length, left));
                        if (n < 0) throw new EOFException();
                        crc.update(buf, 0, n);
                        left -= n;
                    }
                    long stored = in.readInt() & 0xffffffffL;
                    if (stored != crc.getValue()) {
                        throw new ImageFiles.BadImage(file, "PNG chunk " + printable(name) + " fails its CRC check (damaged file; --lenient reads it anyway)");
                    }
                } catch (EOFException e) {
                    throw new ImageFiles.BadImage(file, "PNG ends inside its " + printable(name) + " chunk (truncated; --lenient reads what is there)");
                }
                if (name.equals("IEND")) return;
            }
        }
    }

    private static String printable(String s) {
        return s.chars().allMatch(c -> c >= 'A' && c <= 'z') ? s : "(unnamed)";
    }
}
