package dev.headroom.testing;

import java.awt.image.BufferedImage;
import java.awt.image.Raster;
import java.awt.image.WritableRaster;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.CRC32;
import java.util.zip.Deflater;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageWriter;
import javax.imageio.stream.ImageOutputStream;

/** Makes hostile and unusual input files at test time: pickles, checkpoints, safetensors, TF.js models, images. */
public final class HostileFiles {
    private HostileFiles() {}

    /** A protocol-2 pickle, written opcode by opcode. */
    public static final class Pickle {
        private final ByteArrayOutputStream b = new ByteArrayOutputStream();

        public Pickle() {
            b.write(0x80);
            b.write(2);
        }

        public Pickle op(int... ops) {
            for (int o : ops) b.write(o);
            return this;
        }

        public Pickle str(String s) {
            byte[] u = s.getBytes(StandardCharsets.UTF_8);
            b.write('X');
            b.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(u.length).array());
            b.writeBytes(u);
            return this;
        }

        public Pickle integer(long v) {
            b.write(0x8a);
            b.write(8);
            b.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array());
            return this;
        }

        public Pickle global(String module, String name) {
            b.write('c');
            b.writeBytes((module + "\n" + name + "\n").getBytes(StandardCharsets.US_ASCII));
            return this;
        }

        public Pickle tuple(long... values) {
            op('(');
            for (long v : values) integer(v);
            return op('t');
        }

        /** Pushes torch._utils._rebuild_tensor_v2(storage(key, numel floats), offset, size, stride). */
        public Pickle tensor(String key, long numel, long offset, long[] size, long[] stride) {
            global("torch._utils", "_rebuild_tensor_v2");
            op('(');
            op('(').str("storage").global("torch", "FloatStorage").str(key).str("cpu").integer(numel).op('t', 'Q');
            integer(offset).tuple(size).tuple(stride).op(0x89);
            op('t', 'R');
            return this;
        }

        public byte[] bytes() {
            return b.toByteArray();
        }
    }

    /** A zip checkpoint: archive/data.pkl and archive/data/KEY entries (stored, or deflated). */
    public static void checkpoint(Path file, byte[] pickle, boolean deflate, Object... keyAndData) throws IOException {
        try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(file))) {
            z.setLevel(Deflater.BEST_SPEED);
            entry(z, "archive/data.pkl", pickle, true);
            for (int i = 0; i < keyAndData.length; i += 2) entry(z, "archive/data/" + keyAndData[i], (byte[]) keyAndData[i + 1], !deflate);
        }
    }

    private static void entry(ZipOutputStream z, String name, byte[] data, boolean stored) throws IOException {
        ZipEntry e = new ZipEntry(name);
        if (stored) {
            CRC32 crc = new CRC32();
            crc.update(data);
            e.setMethod(ZipEntry.STORED);
            e.setSize(data.length);
            e.setCompressedSize(data.length);
            e.setCrc(crc.getValue());
        }
        z.putNextEntry(e);
        z.write(data);
        z.closeEntry();
    }

    /** A checkpoint whose one storage entry is {@code bytes} zero bytes, deflated (a few MB for a GB). */
    public static void zipBomb(Path file, long bytes) throws IOException {
        byte[] pkl = new Pickle().op('}').str("body.0.weight").tensor("0", bytes / 4, 0, new long[] {bytes / 4}, new long[] {1}).op('s', '.').bytes();
        try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(file))) {
            z.setLevel(Deflater.BEST_SPEED);
            entry(z, "archive/data.pkl", pkl, true);
            z.putNextEntry(new ZipEntry("archive/data/0"));
            byte[] zeros = new byte[1 << 20];
            for (long done = 0; done < bytes; done += zeros.length) z.write(zeros, 0, (int) Math.min(zeros.length, bytes - done));
            z.closeEntry();
        }
    }

    /** A safetensors file from a JSON header and a data section. */
    public static void safetensors(Path file, String header, byte[] data) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        try (OutputStream o = Files.newOutputStream(file)) {
            o.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length).array());
            o.write(h);
            o.write(data);
        }
    }

    /** A TF.js model.json with the given topology and one weight group. */
    public static String tfjs(String layersJson, String weightsJson, String pathsJson) {
        return "{\"modelTopology\":{\"class_name\":\"Model\",\"config\":{\"layers\":" + layersJson + "}},"
                + "\"weightsManifest\":[{\"paths\":" + pathsJson + ",\"weights\":" + weightsJson + "}]}";
    }

    /** A small RGB(A) test picture with a gradient. */
    public static BufferedImage picture(int w, int h) {
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) img.setRGB(x, y, (x * 255 / w) << 16 | (y * 255 / h) << 8 | 90);
        return img;
    }

    /** A baseline JPEG with an APP1 Exif segment carrying only the orientation tag. */
    public static byte[] jpegWithOrientation(BufferedImage img, int orientation) throws IOException {
        ByteArrayOutputStream jpg = new ByteArrayOutputStream();
        ImageIO.write(img, "jpeg", jpg);
        byte[] j = jpg.toByteArray();
        ByteBuffer tiff = ByteBuffer.allocate(26).order(ByteOrder.BIG_ENDIAN);
        tiff.put((byte) 'M').put((byte) 'M').putShort((short) 42).putInt(8);         // header, IFD at 8
        tiff.putShort((short) 1);                                                      // one entry
        tiff.putShort((short) 0x0112).putShort((short) 3).putInt(1).putShort((short) orientation).putShort((short) 0);
        tiff.putInt(0);                                                                // no next IFD
        byte[] exif = new byte[6 + tiff.capacity()];
        System.arraycopy("Exif\0\0".getBytes(StandardCharsets.ISO_8859_1), 0, exif, 0, 6);
        System.arraycopy(tiff.array(), 0, exif, 6, tiff.capacity());
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(j, 0, 2);                                                            // SOI
        out.write(0xff);
        out.write(0xe1);
        out.write((exif.length + 2) >> 8);
        out.write((exif.length + 2) & 0xff);
        out.writeBytes(exif);
        out.write(j, 2, j.length - 2);
        return out.toByteArray();
    }

    /**
     * A CMYK JPEG as Photoshop writes one: 4 components, an Adobe APP14 marker (transform 0) and
     * inverted values, filled with one CMYK colour (0..255 each).
     */
    public static byte[] cmykJpeg(int w, int h, int c, int m, int y, int k) throws IOException {
        WritableRaster r = Raster.createInterleavedRaster(java.awt.image.DataBuffer.TYPE_BYTE, w, h, 4, null);
        for (int yy = 0; yy < h; yy++) for (int x = 0; x < w; x++) r.setPixel(x, yy, new int[] {255 - c, 255 - m, 255 - y, 255 - k});
        ImageWriter writer = ImageIO.getImageWritersByFormatName("jpeg").next();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (ImageOutputStream ios = ImageIO.createImageOutputStream(out)) {
            writer.setOutput(ios);
            writer.write(null, new IIOImage(r, null, null), null);
        } finally {
            writer.dispose();
        }
        byte[] j = out.toByteArray();
        byte[] adobe = {(byte) 0xff, (byte) 0xee, 0, 14, 'A', 'd', 'o', 'b', 'e', 0, 100, 0, 0, 0, 0, 0};   // version 100, no flags, transform 0
        ByteArrayOutputStream withMarker = new ByteArrayOutputStream();
        withMarker.write(j, 0, 2);
        withMarker.writeBytes(adobe);
        withMarker.write(j, 2, j.length - 2);
        return withMarker.toByteArray();
    }

    /** The PNG bytes of an image. */
    public static byte[] png(BufferedImage img) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ImageIO.write(img, "png", out);
        return out.toByteArray();
    }

    /** Offset of the first chunk of this type in a PNG (its length field). */
    public static int chunk(byte[] png, String type) {
        for (int at = 8; at + 8 <= png.length; ) {
            int len = ByteBuffer.wrap(png, at, 4).getInt();
            if (new String(png, at + 4, 4, StandardCharsets.US_ASCII).equals(type)) return at;
            at += 12 + len;
        }
        throw new IllegalArgumentException("no " + type + " chunk");
    }
}
