package dev.headroom.models;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * The model used when none is named: idealo's RDN "psnr-small" x2 (C=3, D=10, G=64, G0=64;
 * 2,619,635 float32 parameters), a Keras HDF5 file inside the npm package
 * {@code @upscalerjs/models@0.9.0} (MIT). Fetched on first use and checked against its SHA-256.
 */
public final class DefaultModel {
    public static final String PACKAGE = "@upscalerjs/models";
    public static final String VERSION = "0.9.0";
    public static final String ENTRY = "package/models/idealo/psnr-small-quant-uint8/image-super-resolution-psnr-small.h5";
    public static final String SHA256 = "4ea33850fd8e9f2dd39ef53105a69b98b02705570c76993fafdfdcac5c88b48b";

    private DefaultModel() {}

    public static Path file() {
        Path f = NpmPackage.unpacked(PACKAGE, VERSION).resolve(ENTRY);
        if (!Files.isRegularFile(f)) throw new NpmPackage.Unavailable(PACKAGE + "@" + VERSION + " does not contain " + ENTRY);
        String got = sha256(f);
        if (!got.equals(SHA256)) {
            throw new NpmPackage.Unavailable("default model " + f + " has SHA-256 " + got + ", expected " + SHA256
                    + "; delete " + NpmPackage.cacheRoot().resolve("npm") + " and run again");
        }
        return f;
    }

    public static String sha256(Path f) {
        try (InputStream in = Files.newInputStream(f)) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) > 0; ) md.update(buf, 0, n);
            return HexFormat.of().formatHex(md.digest());
        } catch (IOException | NoSuchAlgorithmException e) {
            throw new NpmPackage.Unavailable("cannot read " + f + ": " + e.getMessage());
        }
    }
}
