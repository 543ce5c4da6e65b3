package dev.headroom.server;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Random;
import java.util.zip.CRC32;
import java.util.zip.Deflater;

/** PNG bytes for server tests: seeded noise, and a header that claims more pixels than it has. */
final class TestImages {
    private TestImages() {}

    /** An 8-bit RGB PNG of seeded noise. */
    static byte[] noise(int w, int h, long seed) {
        Random r = new Random(seed);
        byte[] raw = new byte[h * (1 + 3 * w)];
        for (int y = 0; y < h; y++) {
            raw[y * (1 + 3 * w)] = 0;
            for (int i = 1; i <= 3 * w; i++) raw[y * (1 + 3 * w) + i] = (byte) r.nextInt(256);
        }
        return png(w, h, deflate(raw));
    }

    /** A PNG whose header says w x h but whose data is a few bytes: only a header reader survives it. */
    static byte[] bomb(int w, int h) {
        return png(w, h, deflate(new byte[64]));
    }

    private static byte[] deflate(byte[] raw) {
        Deflater d = new Deflater();
        d.setInput(raw);
        d.finish();
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        byte[] buf = new byte[1 << 16];
        while (!d.finished()) o.write(buf, 0, d.deflate(buf));
        return o.toByteArray();
    }

    private static byte[] png(int w, int h, byte[] idat) {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        o.writeBytes(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'});
        chunk(o, "IHDR", ByteBuffer.allocate(13).putInt(w).putInt(h).put((byte) 8).put((byte) 2).put((byte) 0).put((byte) 0).put((byte) 0).array());
        chunk(o, "IDAT", idat);
        chunk(o, "IEND", new byte[0]);
        return o.toByteArray();
    }

    private static void chunk(ByteArrayOutputStream o, String type, byte[] data) {
        CRC32 crc = new CRC32();
        byte[] t = type.getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        crc.update(t);
        crc.update(data);
        o.writeBytes(ByteBuffer.allocate(4).putInt(data.length).array());
        o.writeBytes(t);
        o.writeBytes(data);
        o.writeBytes(ByteBuffer.allocate(4).putInt((int) crc.getValue()).array());
    }

    static void write(java.nio.file.Path p, byte[] b) throws IOException {
        java.nio.file.Files.write(p, b);
    }
}
