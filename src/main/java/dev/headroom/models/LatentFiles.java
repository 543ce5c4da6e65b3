package dev.headroom.models;

import dev.headroom.core.TensorData;
import dev.headroom.models.format.DType;
import dev.headroom.models.format.Safetensors;
import dev.headroom.models.format.TorchCheckpoint;
import dev.headroom.runtime.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Latent and image tensors in files: read from safetensors (a tensor named {@code latent}, or the
 * only tensor), NumPy {@code .npy} (little-endian f2/f4/f8, C order) or a PyTorch {@code .pt}
 * (a tensor, or a dict holding {@code latent} or one tensor), shaped [B, C, h, w] (or [C, h, w]),
 * and returned NHWC; written as .npy (NHWC images) or safetensors ({@code latent}, [B, C, h, w]),
 * atomically (a temporary file moved into place).
 */
public final class LatentFiles {
    private LatentFiles() {}

    /** The (B, h, w, C) latent in {@code file}. */
    public static Tensor read(Path file) {
        String problem = InputFiles.problem(file);
        if (problem != null) throw new ModelFormatException(file, problem);
        String name = file.getFileName().toString().toLowerCase();
        TensorData t;
        if (name.endsWith(".npy") || npy(file)) {   // by its magic too: the job server's uploads have no extension
            t = readNpy(file);
        } else {
            Map<String, TensorData> all = zip(file) ? TorchCheckpoint.read(file).tensors() : Safetensors.read(file).tensors();
            t = all.get("latent");
            if (t == null && all.size() == 1) t = all.values().iterator().next();
            if (t == null) throw new ModelFormatException(file, "holds " + all.size() + " tensors and none is named 'latent'; name the latent 'latent'");
        }
        int[] s = t.shape();
        if (s.length == 3) s = new int[] {1, s[0], s[1], s[2]};
        if (s.length != 4) throw new ModelFormatException(file, "latent of shape " + t.shapeString() + "; expected [B, C, h, w]");
        int b = s[0], c = s[1], h = s[2], w = s[3];
        if (b < 1 || c < 1 || h < 1 || w < 1) throw new ModelFormatException(file, "latent of shape " + t.shapeString() + " is empty");
        float[] src = t.data(), out = new float[src.length];
        for (int n = 0; n < b; n++)
            for (int ch = 0; ch < c; ch++)
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++) out[((n * h + y) * w + x) * c + ch] = src[((n * c + ch) * h + y) * w + x];
        return Tensor.wrap(out, b, h, w, c);
    }

    private static boolean npy(Path f) {
        try (var in = java.nio.file.Files.newInputStream(f)) {
            byte[] b = in.readNBytes(6);
            return b.length == 6 && (b[0] & 0xff) == 0x93 && new String(b, 1, 5, java.nio.charset.StandardCharsets.US_ASCII).equals("NUMPY");
        } catch (java.io.IOException e) {
            return false;
        }
    }

    private static boolean zip(Path f) {
        try (var in = Files.newInputStream(f)) {
            byte[] m = in.readNBytes(4);
            return m.length == 4 && m[0] == 'P' && m[1] == 'K' && m[2] == 3 && m[3] == 4;
        } catch (IOException e) {
            throw new ModelFormatException(f, "cannot read: " + e.getMessage());
        }
    }

    private static final Pattern DESCR = Pattern.compile("'descr'\\s*:\\s*'([<|=]?)([fF])(\\d)'");
    private static final Pattern FORTRAN = Pattern.compile("'fortran_order'\\s*:\\s*(True|False)");
    private static final Pattern SHAPE = Pattern.compile("'shape'\\s*:\\s*\\(([^)]*)\\)");

    /** NumPy format 1.0-3.0: magic, version, header length, a Python dict literal, then the data. */
    static TensorData readNpy(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ); Arena arena = Arena.ofConfined()) {
            long size = ch.size();
            if (size < 10) throw new ModelFormatException(file, ".npy file of " + size + " bytes is truncated");
            MemorySegment seg = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            byte[] magic = seg.asSlice(0, 6).toArray(ValueLayout.JAVA_BYTE);
            if (magic[0] != (byte) 0x93 || !new String(magic, 1, 5, StandardCharsets.US_ASCII).equals("NUMPY")) {
                throw new ModelFormatException(file, "not a .npy file (no \\x93NUMPY magic)");
            }
            int major = seg.get(ValueLayout.JAVA_BYTE, 6);
            long headerLen, start;
            ValueLayout.OfInt le32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
            ValueLayout.OfShort le16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
            if (major == 1) {
                headerLen = seg.get(le16, 8) & 0xffff;
                start = 10;
            } else {
                if (size < 12) throw new ModelFormatException(file, ".npy file is truncated");
                headerLen = seg.get(le32, 8) & 0xffffffffL;
                start = 12;
            }
            if (start + headerLen > size) throw new ModelFormatException(file, ".npy header of " + headerLen + " bytes runs past the end of the file (truncated)");
            String header = new String(seg.asSlice(start, headerLen).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.ISO_8859_1);
            Matcher d = DESCR.matcher(header), f = FORTRAN.matcher(header), s = SHAPE.matcher(header);
            if (!d.find() || !s.find()) throw new ModelFormatException(file, ".npy header without a float dtype and shape: " + header.strip());
            if (f.find() && f.group(1).equals("True")) throw new ModelFormatException(file, ".npy in Fortran order; save it in C order");
            DType type = switch (d.group(3)) {
                case "2" -> DType.F16;
                case "4" -> DType.F32;
                case "8" -> DType.F64;
                default -> throw new ModelFormatException(file, ".npy dtype f" + d.group(3) + "; use float16, float32 or float64");
            };
            String[] dims = s.group(1).split(",");
            int[] shape = java.util.Arrays.stream(dims).map(String::strip).filter(x -> !x.isEmpty()).mapToInt(x -> {
                try {
                    return Integer.parseInt(x);
                } catch (NumberFormatException e) {
                    throw new ModelFormatException(file, ".npy shape (" + s.group(1) + ") is not a list of sizes");
                }
            }).toArray();
            long count = 1;
            for (int x : shape) {
                if (x < 0) throw new ModelFormatException(file, ".npy shape (" + s.group(1) + ") has a negative size");
                count *= x;
                if (count > Integer.MAX_VALUE - 16) throw new ModelFormatException(file, ".npy of shape (" + s.group(1) + ") is too large");
            }
            long dataStart = start + headerLen;
            if (dataStart + count * type.bytes > size) {
                throw new ModelFormatException(file, ".npy of shape (" + s.group(1) + ") needs " + count * type.bytes + " bytes of data, the file has "
                        + (size - dataStart) + " (truncated)");
            }
            return new TensorData("latent", shape, type.toFloats(seg, dataStart, (int) count));
        } catch (IOException e) {
            throw new ModelFormatException(file, "cannot read: " + e.getMessage(), e);
        }
    }

    /** Writes t (B, H, W, C) as a float32 .npy of that shape. */
    public static void writeNpy(Tensor t, Path file) throws IOException {
        String dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + t.n + ", " + t.h + ", " + t.w + ", " + t.c + "), }";
        int pad = 64 - (10 + dict.length() + 1) % 64;
        String header = dict + " ".repeat(pad % 64) + "\n";
        float[] v = t.toArray();
        ByteBuffer buf = ByteBuffer.allocate(10 + header.length() + v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        buf.put((byte) 0x93).put("NUMPY".getBytes(StandardCharsets.US_ASCII)).put((byte) 1).put((byte) 0).putShort((short) header.length());
        buf.put(header.getBytes(StandardCharsets.US_ASCII));
        buf.asFloatBuffer().put(v);
        atomically(file, buf.array());
    }

    /** Writes a (B, h, w, C) latent as safetensors: one F32 tensor 'latent' of shape [B, C, h, w], and the VAE family in the metadata. */
    public static void writeSafetensors(Tensor latent, Path file, String family) throws IOException {
        int b = latent.n, c = latent.c, h = latent.h, w = latent.w;
        long bytes = 4L * b * c * h * w;
        String json = "{\"__metadata__\":{\"vae_family\":\"" + family.replace("\"", "") + "\"},\"latent\":{\"dtype\":\"F32\",\"shape\":["
                + b + "," + c + "," + h + "," + w + "],\"data_offsets\":[0," + bytes + "]}}";
        while (json.length() % 8 != 0) json += " ";
        ByteBuffer buf = ByteBuffer.allocate(Math.toIntExact(8 + json.length() + bytes)).order(ByteOrder.LITTLE_ENDIAN);
        buf.putLong(json.length()).put(json.getBytes(StandardCharsets.US_ASCII));
        for (int n = 0; n < b; n++)
            for (int ch = 0; ch < c; ch++)
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++) buf.putFloat(latent.get(n, y, x, ch));
        atomically(file, buf.array());
    }

    private static void atomically(Path file, byte[] data) throws IOException {
        Path tmp = dev.headroom.runtime.TempFiles.create(file);
        try {
            Files.write(tmp, data);
            dev.headroom.runtime.TempFiles.commit(tmp, file);
        } finally {
            dev.headroom.runtime.TempFiles.discard(tmp);
        }
    }
}
