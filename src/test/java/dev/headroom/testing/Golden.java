package dev.headroom.testing;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Reads the golden tensors that scripts/golden/make_golden.py writes: magic "HRGT", uint32 version,
 * uint32 rank, uint32 dims, float32 data, all little-endian.
 */
public record Golden(int[] shape, float[] data) {
    public static final int VERSION = 1;

    public static Path dir() {
        return Path.of("src/test/resources/golden");
    }

    public static Golden read(String name) {
        try {
            ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(dir().resolve(name))).order(ByteOrder.LITTLE_ENDIAN);
            byte[] magic = new byte[4];
            b.get(magic);
            if (!new String(magic).equals("HRGT")) throw new IllegalStateException(name + ": not a golden tensor file");
            int version = b.getInt();
            if (version != VERSION) throw new IllegalStateException(name + ": golden version " + version + ", tests expect " + VERSION + "; re-run make_golden.py");
            int[] shape = new int[b.getInt()];
            int n = 1;
            for (int i = 0; i < shape.length; i++) n *= shape[i] = b.getInt();
            float[] d = new float[n];
            b.asFloatBuffer().get(d);
            return new Golden(shape, d);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** max |a - ref| over max |ref|. */
    public static double relativeError(float[] a, float[] ref) {
        if (a.length != ref.length) throw new AssertionError("lengths " + a.length + " vs " + ref.length);
        double err = 0, scale = 0;
        for (int i = 0; i < a.length; i++) {
            err = Math.max(err, Math.abs(a[i] - ref[i]));
            scale = Math.max(scale, Math.abs(ref[i]));
        }
        return err / scale;
    }
}
