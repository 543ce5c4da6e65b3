package dev.headroom.models.image;

import com.twelvemonkeys.imageio.metadata.Directory;
import com.twelvemonkeys.imageio.metadata.Entry;
import com.twelvemonkeys.imageio.metadata.jpeg.JPEG;
import com.twelvemonkeys.imageio.metadata.jpeg.JPEGSegment;
import com.twelvemonkeys.imageio.metadata.jpeg.JPEGSegmentUtil;
import com.twelvemonkeys.imageio.metadata.tiff.TIFF;
import com.twelvemonkeys.imageio.metadata.tiff.TIFFReader;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.List;
import javax.imageio.ImageIO;
import javax.imageio.stream.ImageInputStream;

/** A JPEG's EXIF orientation, read with TwelveMonkeys' metadata reader. */
final class Exif {
    private Exif() {}

    /** The orientation tag (1..8), or 1 when the file has no EXIF or no such tag; damaged EXIF counts as none. */
    static int orientation(Path file) {
        try (ImageInputStream in = ImageIO.createImageInputStream(file.toFile())) {
            List<JPEGSegment> app1 = JPEGSegmentUtil.readSegments(in, JPEG.APP1, "Exif");
            if (app1.isEmpty()) return 1;
            try (InputStream data = app1.getFirst().data()) {
                if (data.read() < 0) return 1;   // the pad byte after "Exif\0"
                try (ImageInputStream tiff = ImageIO.createImageInputStream(data)) {
                    Directory dir = new TIFFReader().read(tiff);
                    Entry e = dir.getEntryById(TIFF.TAG_ORIENTATION);
                    if (e == null || !(e.getValue() instanceof Number n)) return 1;
                    int o = n.intValue();
                    return o >= 1 && o <= 8 ? o : 1;
                }
            }
        } catch (IOException | RuntimeException e) {
            return 1;
        }
    }
}
