package dev.headroom.models.image;

import java.awt.Point;
import java.awt.Rectangle;
import java.awt.Transparency;
import java.awt.color.ColorSpace;
import java.awt.image.ColorModel;
import java.awt.image.ComponentColorModel;
import java.awt.image.DataBuffer;
import java.awt.image.PixelInterleavedSampleModel;
import java.awt.image.Raster;
import java.awt.image.RenderedImage;
import java.awt.image.SampleModel;
import java.awt.image.WritableRaster;
import java.io.IOException;
import java.util.Vector;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageWriteParam;
import javax.imageio.stream.ImageOutputStream;

/**
 * JPEG written as the rows come, through the JDK's JPEG writer: that writer pulls the image one
 * scanline at a time from a one-tile {@link RenderedImage}'s raster, so the raster here is backed by
 * a {@link DataBuffer} that hands over bands of 8-bit samples as {@link #rows} delivers them (at
 * most {@link #QUEUED} bands waiting), and the writer runs on a thread of its own. Memory is a few
 * bands, not the image. Samples are rounded as the other writers round them.
 */
final class JpegWriter extends RowWriter {
    static final int QUEUED = 2;

    private final OutputFile file;
    private final BlockingQueue<byte[]> bands = new ArrayBlockingQueue<>(QUEUED);
    private final Thread encoder;
    private volatile Throwable failed;
    private boolean finished;

    JpegWriter(OutputFile file, int width, int height, int channels, Integer quality) {
        if ((long) width * height * channels > Integer.MAX_VALUE) {
            throw new ImageFiles.BadImage(width + "x" + height + " is too large for one JPEG here; write PNG or TIFF");
        }
        super(width, height, channels, 8);
        this.file = file;
        RenderedImage image = new StreamedImage();
        encoder = new Thread(() -> encode(image, quality), "jpeg-writer");
        encoder.setDaemon(true);
        encoder.start();
    }

    private void encode(RenderedImage image, Integer quality) {
        javax.imageio.ImageWriter w = ImageIO.getImageWritersByFormatName("jpeg").next();
        try (ImageOutputStream out = ImageIO.createImageOutputStream(file.temp().toFile())) {
            w.setOutput(out);
            ImageWriteParam p = w.getDefaultWriteParam();
            p.setCompressionMode(ImageWriteParam.MODE_EXPLICIT);
            p.setCompressionQuality((quality == null ? Encoding.JPEG_QUALITY : quality) / 100f);
            w.write(null, new IIOImage(image, null, null), p);
        } catch (Throwable t) {
            failed = t;
        } finally {
            w.dispose();
        }
    }

    @Override
    public void rows(float[] data, int offset, int rows) {
        byte[] band = new byte[rows * rowBytes];
        for (int i = 0; i < band.length; i++) band[i] = (byte) Math.round(Math.clamp(data[offset + i], 0f, 1f) * 255f);
        give(band, rows);
    }

    @Override
    public int sampleBits() {
        return 8;
    }

    @Override
    public void sampleRows(byte[] samples, int offset, int rows) {
        give(java.util.Arrays.copyOfRange(samples, offset, offset + rows * rowBytes), rows);
    }

    /** Hands a band to the encoder, waiting while it is {@link #QUEUED} bands behind. */
    private void give(byte[] band, int rows) {
        checkBand(rows);
        long t0 = System.nanoTime();
        try {
            while (!bands.offer(band, 100, TimeUnit.MILLISECONDS)) {
                if (failed != null || !encoder.isAlive()) throw new IllegalStateException("JPEG encoding failed: " + failed, failed);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while encoding", e);
        }
        rowsGiven += rows;
        encodeNanos.addAndGet(System.nanoTime() - t0);
    }

    @Override
    public void finish() throws IOException {
        checkComplete("JPEG");
        long t0 = System.nanoTime();
        try {
            encoder.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while encoding", e);
        }
        if (failed != null) throw new IOException("JPEG encoding failed: " + failed, failed);
        encodeNanos.addAndGet(System.nanoTime() - t0);
        long t1 = System.nanoTime();
        file.commit();
        finished = true;
        writeNanos += System.nanoTime() - t1;
    }

    @Override
    public void close() throws IOException {
        if (finished) return;
        encoder.interrupt();
        try {
            encoder.join(10_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            file.close();
        }
    }

    /**
     * The image's samples as the encoder asks for them, row after row: each band is taken from the
     * queue when the encoder first reads one of its rows, and dropped when it moves past it. The JDK
     * writer reads rows in order, once each; reading back (or far ahead) is refused.
     */
    private final class Feed extends DataBuffer {
        private byte[] band = new byte[0];
        private long first, end;   // the sample indices band holds: [first, end)

        Feed() {
            super(DataBuffer.TYPE_BYTE, width * height * channels);
        }

        @Override
        public int getElem(int bank, int i) {
            while (i >= end) next();
            if (i < first) throw new IllegalStateException("JPEG encoder read sample " + i + " after moving on to " + first);
            return band[(int) (i - first)] & 0xff;
        }

        private void next() {
            byte[] b;
            try {
                b = bands.take();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("JPEG writing stopped");
            }
            first = end;
            end += b.length;
            band = b;
        }

        @Override
        public void setElem(int bank, int i, int val) {
            throw new UnsupportedOperationException("the image being written is read-only");
        }
    }

    /** A one-tile image whose raster reads through {@link Feed}. */
    private final class StreamedImage implements RenderedImage {
        private final ColorModel cm = new ComponentColorModel(ColorSpace.getInstance(channels == 1 ? ColorSpace.CS_GRAY : ColorSpace.CS_sRGB),
                false, false, Transparency.OPAQUE, DataBuffer.TYPE_BYTE);
        private final SampleModel sm = new PixelInterleavedSampleModel(DataBuffer.TYPE_BYTE, width, height, channels, rowBytes,
                channels == 1 ? new int[] {0} : new int[] {0, 1, 2});
        private final WritableRaster raster = Raster.createWritableRaster(sm, new Feed(), new Point(0, 0));

        @Override public Vector<RenderedImage> getSources() { return null; }
        @Override public Object getProperty(String name) { return java.awt.Image.UndefinedProperty; }
        @Override public String[] getPropertyNames() { return null; }
        @Override public ColorModel getColorModel() { return cm; }
        @Override public SampleModel getSampleModel() { return sm; }
        @Override public int getWidth() { return width; }
        @Override public int getHeight() { return height; }
        @Override public int getMinX() { return 0; }
        @Override public int getMinY() { return 0; }
        @Override public int getNumXTiles() { return 1; }
        @Override public int getNumYTiles() { return 1; }
        @Override public int getMinTileX() { return 0; }
        @Override public int getMinTileY() { return 0; }
        @Override public int getTileWidth() { return width; }
        @Override public int getTileHeight() { return height; }
        @Override public int getTileGridXOffset() { return 0; }
        @Override public int getTileGridYOffset() { return 0; }
        @Override public Raster getTile(int tileX, int tileY) { return raster; }
        @Override public Raster getData() { throw new UnsupportedOperationException("a streamed image is read once, by rows"); }
        @Override public Raster getData(Rectangle rect) { throw new UnsupportedOperationException("a streamed image is read once, by rows"); }
        @Override public WritableRaster copyData(WritableRaster raster) { throw new UnsupportedOperationException("a streamed image is read once, by rows"); }
    }
}
