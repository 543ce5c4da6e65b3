package dev.headroom.models.image;

/** Gives an image's rows once each, top to bottom ({@link PngRows}, {@link JpegRows}); {@link StreamedRows} holds what the tiler needs of them. */
interface RowDecoder extends AutoCloseable {
    /** The next row's samples into {@code dst} (width x channels samples, 8-bit as bytes, 16-bit as big-endian byte pairs). */
    void next(byte[] dst);

    /** Gives back the file (and a decoding thread); the rows not yet read are not decoded. */
    @Override
    void close();
}
