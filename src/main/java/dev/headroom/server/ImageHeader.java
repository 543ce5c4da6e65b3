package dev.headroom.server;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Iterator;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;

/** An upload's size, read from its header only (a decompression bomb costs nothing until it is admitted, and it never is). */
record ImageHeader(int width, int height, String format) {

    static ImageHeader read(Path file, long maxPixels) {
        try (ImageInputStream in = ImageIO.createImageInputStream(file.toFile())) {
            Iterator<ImageReader> readers = in == null ? null : ImageIO.getImageReaders(in);
            if (readers == null || !readers.hasNext()) throw ApiError.unprocessable("the image part is not a PNG or JPEG image; send a PNG or JPEG file");
            ImageReader r = readers.next();
            try {
                r.setInput(in, true, true);
                long w = r.getWidth(0), h = r.getHeight(0);
                if (w < 1 || h < 1) throw ApiError.unprocessable("the image has zero size (" + w + "x" + h + ")");
                if (w * h > maxPixels) {
                    throw new ApiError(413, "Content Too Large", "the image is " + w + "x" + h + " = " + w * h + " pixels, over this server's limit of "
                            + maxPixels + " (--max-pixels); send a smaller image");
                }
                return new ImageHeader((int) w, (int) h, r.getFormatName().toLowerCase());
            } finally {
                r.dispose();
            }
        } catch (IOException | RuntimeException e) {
            if (e instanceof ApiError a) throw a;
            throw ApiError.unprocessable("the image part is damaged or not a supported image; send a PNG or JPEG file");
        }
    }
}
