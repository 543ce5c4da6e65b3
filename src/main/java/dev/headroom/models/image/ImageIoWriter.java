package dev.headroom.models.image;

import java.awt.Point;
import java.awt.Transparency;
import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.ComponentColorModel;
import java.awt.image.DataBuffer;
import java.awt.image.DataBufferByte;
import java.awt.image.DataBufferUShort;
import java.awt.image.Raster;
import java.awt.image.WritableRaster;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Iterator;
import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageWriteParam;
import javax.imageio.stream.ImageOutputStream;

/**
 * WebP (libwebp through {@code com.github.usefulness:webp-imageio}), and JPEG and TIFF (the JDK's
 * writers; TIFF Deflate-compressed) through ImageIO, whose writers take a whole image (upscale
 * writes JPEG and TIFF with the streaming {@link JpegWriter} and {@link TiffWriter}; these two are
 * their tests' and benchmark's reference):
 * rows are stored as 8 or 16 bit samples as they come and encoded at {@link #finish}. Gray goes
 * to WebP as RGB (WebP has no gray); JPEG and WebP store 8 bits.
 *
 * <p>WebP cannot stream: libwebp's encoder takes one whole picture (WebPEncode on a WebPPicture;
 * lossless VP8L also derives its transforms and entropy codes from the whole image, and the RIFF
 * chunk's size comes before its data), and webp-imageio's binding passes one array in and gets
 * the whole file back as one array ({@code WebP.encodeRGB/encodeRGBA(config, byte[], w, h, stride)}).
 * So a WebP output holds its samples (at most 16383x16383x4, 1.07 GB) and libwebp's copy.
 */
final class ImageIoWriter extends RowWriter {
    /** libwebp's limit on either side. */
    static final int WEBP_MAX = 16383;
    /** JPEG's limit on either side. */
    static final int JPEG_MAX = 65535;

    private final Path target;
    private final Encoding enc;
    private final int bits;
    /** Gray samples stored as RGB (WebP). */
    private final boolean gray;
    private final BufferedImage image;
    private final byte[] bytes;
    private final short[] shorts;

    /** Stored as {@code channels}, but gray (and gray+alpha) as RGB(A) in WebP, which has no gray; 8 bits but in TIFF. */
    private ImageIoWriter(Path target, Encoding enc, int width, int height, int channels, int bitDepth) {
        super(width, height, enc.format() == ImageFormat.WEBP && channels <= 2 ? channels + 2 : channels, enc.format() == ImageFormat.TIFF ? bitDepth : 8);
        this.target = target;
        this.enc = enc;
        this.gray = this.channels != channels;
        this.bits = bytesPerSample * 8;
        int type = bits > 8 ? DataBuffer.TYPE_USHORT : DataBuffer.TYPE_BYTE;
        boolean alpha = this.channels == 2 || this.channels == 4;
        ColorSpace cs = ColorSpace.getInstance(this.channels <= 2 ? ColorSpace.CS_GRAY : ColorSpace.CS_sRGB);
        ComponentColorModel cm = new ComponentColorModel(cs, alpha, false, alpha ? Transparency.TRANSLUCENT : Transparency.OPAQUE, type);
        WritableRaster raster = Raster.createInterleavedRaster(type, width, height, this.channels, new Point(0, 0));
        image = new BufferedImage(cm, raster, false, null);
        bytes = type == DataBuffer.TYPE_BYTE ? ((DataBufferByte) raster.getDataBuffer()).getData() : null;
        shorts = type == DataBuffer.TYPE_USHORT ? ((DataBufferUShort) raster.getDataBuffer()).getData() : null;
    }

    static ImageIoWriter open(Path target, Encoding enc, int width, int height, int channels, int bitDepth) {
        refuse(enc, width, height, channels);
        long samples = (long) width * height * (channels + 2);
        if (samples > Integer.MAX_VALUE) {
            throw new ImageFiles.BadImage(width + "x" + height + " is too large to hold whole for " + enc.format() + "; write PNG, which streams");
        }
        return new ImageIoWriter(target, enc, width, height, channels, bitDepth);
    }

    /** Refuses, before anything is written, what JPEG and WebP cannot hold (alpha in JPEG, sides beyond their limits). */
    static void refuse(Encoding enc, int width, int height, int channels) {
        boolean alpha = channels == 2 || channels == 4;
        switch (enc.format()) {
            case JPEG -> {
                if (alpha) throw new ImageFiles.BadImage("JPEG has no alpha channel; write the image as PNG, WebP or TIFF to keep it");
                if (width > JPEG_MAX || height > JPEG_MAX) {
                    throw new ImageFiles.BadImage(width + "x" + height + " is beyond JPEG's " + JPEG_MAX + " pixels a side; write PNG or TIFF");
                }
            }
            case WEBP -> {
                if (width > WEBP_MAX || height > WEBP_MAX) {
                    throw new ImageFiles.BadImage(width + "x" + height + " is beyond WebP's " + WEBP_MAX + " pixels a side; write PNG, JPEG or TIFF");
                }
            }
            default -> { }
        }
    }

    @Override
    public void rows(float[] data, int offset, int rows) {
        checkBand(rows);
        long t0 = System.nanoTime();
        int inC = gray ? channels - 2 : channels;
        float max = bits > 8 ? 65535f : 255f;
        int d = rowsGiven * width * channels;
        for (int p = 0, n = rows * width; p < n; p++) {
            int s = offset + p * inC;
            for (int c = 0; c < channels; c++) {
                // gray to RGB(A): the gray sample three times, then alpha
                int from = !gray ? c : c < 3 ? 0 : 1;
                int v = Math.round(Math.clamp(data[s + from], 0f, 1f) * max);
                if (bytes != null) bytes[d++] = (byte) v;
                else shorts[d++] = (short) v;
            }
        }
        rowsGiven += rows;
        encodeNanos.addAndGet(System.nanoTime() - t0);
    }

    /** 8 or 16 as stored; 0 for gray in WebP, stored as RGB (the samples would need widening). */
    @Override
    public int sampleBits() {
        return gray ? 0 : bits;
    }

    @Override
    public void sampleRows(byte[] samples, int offset, int rows) {
        if (gray) throw new IllegalStateException("gray WebP takes float rows");
        checkBand(rows);
        long t0 = System.nanoTime();
        int n = rows * width * channels, d = rowsGiven * width * channels;
        if (bytes != null) {
            System.arraycopy(samples, offset, bytes, d, n);
        } else {
            for (int i = 0; i < n; i++) shorts[d + i] = (short) ((samples[offset + 2 * i] & 0xff) << 8 | samples[offset + 2 * i + 1] & 0xff);
        }
        rowsGiven += rows;
        encodeNanos.addAndGet(System.nanoTime() - t0);
    }

    @Override
    public void finish() throws IOException {
        checkComplete(enc.format());
        long t0 = System.nanoTime();
        try (OutputFile file = OutputFile.create(target)) {
            javax.imageio.ImageWriter w = writer();
            try (ImageOutputStream out = ImageIO.createImageOutputStream(file.temp().toFile())) {
                w.setOutput(out);
                w.write(null, new IIOImage(image, null, null), param(w));
            } finally {
                w.dispose();
            }
            encodeNanos.addAndGet(System.nanoTime() - t0);
            long t1 = System.nanoTime();
            file.commit();
            writeNanos += System.nanoTime() - t1;
        }
    }

    private javax.imageio.ImageWriter writer() throws IOException {
        String name = switch (enc.format()) {
            case JPEG -> "jpeg";
            case WEBP -> "webp";
            case TIFF -> "tiff";
            case PNG -> "png";
        };
        Iterator<javax.imageio.ImageWriter> it = ImageIO.getImageWritersByFormatName(name);
        if (!it.hasNext()) throw new IOException("no ImageIO writer for " + enc.format() + " on this Java runtime");
        return it.next();
    }

    private ImageWriteParam param(javax.imageio.ImageWriter w) {
        ImageWriteParam p = w.getDefaultWriteParam();
        switch (enc.format()) {
            case JPEG -> {
                p.setCompressionMode(ImageWriteParam.MODE_EXPLICIT);
                p.setCompressionQuality((enc.quality() == null ? Encoding.JPEG_QUALITY : enc.quality()) / 100f);
            }
            case WEBP -> {
                p.setCompressionMode(ImageWriteParam.MODE_EXPLICIT);
                p.setCompressionType(compressionType(p, enc.quality() == null ? "lossless" : "lossy"));
                if (enc.quality() != null) p.setCompressionQuality(enc.quality() / 100f);
            }
            case TIFF -> {
                p.setCompressionMode(ImageWriteParam.MODE_EXPLICIT);
                p.setCompressionType(compressionType(p, "deflate"));
            }
            default -> { }
        }
        return p;
    }

    private static String compressionType(ImageWriteParam p, String wanted) {
        for (String t : p.getCompressionTypes()) if (t.equalsIgnoreCase(wanted)) return t;
        throw new IllegalStateException("the ImageIO writer has no '" + wanted + "' compression: " + java.util.Arrays.toString(p.getCompressionTypes()));
    }

    @Override
    public void close() {
        // nothing is on disk before finish, which cleans up after itself
    }
}
