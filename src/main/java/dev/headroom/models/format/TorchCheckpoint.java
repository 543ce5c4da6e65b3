package dev.headroom.models.format;

import dev.headroom.core.TensorData;
import dev.headroom.models.ModelFormatException;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Enumeration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;

/**
 * PyTorch checkpoints in the zip format (torch.save since 1.6): {@code PREFIX/data.pkl} is the
 * pickled object, read by {@link RestrictedUnpickler}; {@code PREFIX/data/KEY} holds each storage.
 * Training checkpoints wrap the weights: {@code params_ema}, {@code params} and {@code state_dict}
 * are unwrapped, in that order of preference.
 */
public final class TorchCheckpoint {
    private static final long MAX_PICKLE = 64L << 20;
    private static final List<String> WRAPPERS = List.of("params_ema", "params", "state_dict", "model");

    private TorchCheckpoint() {}

    public static WeightFile read(Path file) {
        return read(file, name -> true);
    }

    /**
     * Only the tensors whose names {@code keep} accepts are read (their storages are never
     * inflated otherwise): the VAE of a whole .ckpt checkpoint. The result may be empty; a
     * checkpoint that names no tensor at all is still an error.
     */
    public static WeightFile read(Path file, java.util.function.Predicate<String> keep) {
        ZipFile zip;
        try {
            zip = new ZipFile(file.toFile());
        } catch (ZipException e) {
            throw new ModelFormatException(file, "not a zip-format PyTorch checkpoint (a legacy pre-1.6 file must be re-saved with torch.save; or the file is damaged)");
        } catch (IOException e) {
            throw new ModelFormatException(file, "cannot read: " + e.getMessage(), e);
        }
        try (zip) {
            ZipEntry pkl = null;
            for (Enumeration<? extends ZipEntry> en = zip.entries(); en.hasMoreElements(); ) {
                ZipEntry e = en.nextElement();
                if (e.getName().endsWith("/data.pkl") || e.getName().equals("data.pkl")) {
                    pkl = e;
                    break;
                }
            }
            if (pkl == null) throw new ModelFormatException(file, "zip file without data.pkl: not a PyTorch checkpoint");
            String prefix = pkl.getName().substring(0, pkl.getName().length() - "data.pkl".length());
            byte[] pickle = readEntry(file, zip, pkl, MAX_PICKLE);
            ByteOrder order = ByteOrder.LITTLE_ENDIAN;
            ZipEntry bo = zip.getEntry(prefix + "byteorder");
            if (bo != null && new String(readEntry(file, zip, bo, 16)).trim().equals("big")) order = ByteOrder.BIG_ENDIAN;
            Object root;
            try {
                root = RestrictedUnpickler.load(pickle);
            } catch (RestrictedUnpickler.Refused r) {
                throw new ModelFormatException(file, r.getMessage());
            }
            // a bare tensor (torch.save(latent, "x.pt")) reads as a dict of one
            Map<?, ?> dict = root instanceof RestrictedUnpickler.TensorRef ? Map.of("tensor", root) : unwrap(file, root);
            Map<String, TensorData> out = new LinkedHashMap<>();
            Map<String, byte[]> storages = new LinkedHashMap<>();
            java.util.Set<String> types = new java.util.TreeSet<>();
            int named = 0;
            for (Map.Entry<?, ?> e : dict.entrySet()) {
                if (!(e.getValue() instanceof RestrictedUnpickler.TensorRef t)) continue;
                String name = String.valueOf(e.getKey());
                named++;
                if (!keep.test(name)) continue;
                byte[] data = storages.get(t.storage().key());
                if (data == null) {
                    ZipEntry se = zip.getEntry(prefix + "data/" + t.storage().key());
                    if (se == null) throw new ModelFormatException(file, "tensor '" + name + "' names storage " + t.storage().key() + ", which the archive lacks (truncated?)");
                    data = readEntry(file, zip, se, Integer.MAX_VALUE - 16);
                    storages.put(t.storage().key(), data);
                }
                out.put(name, tensor(file, name, t, data, order));
                types.add(t.storage().type().replace("Storage", "").toLowerCase());
            }
            if (named == 0) throw new ModelFormatException(file, "checkpoint holds no tensors");
            return new WeightFile(out, types);
        } catch (IOException e) {
            throw new ModelFormatException(file, "cannot read: " + e.getMessage(), e);
        } catch (ArithmeticException | ClassCastException | IllegalArgumentException | NullPointerException | IndexOutOfBoundsException e) {
            throw new ModelFormatException(file, "damaged checkpoint: tensor metadata does not add up (" + e.getClass().getSimpleName() + ")");
        }
    }

    private static Map<?, ?> unwrap(Path file, Object root) {
        if (!(root instanceof Map<?, ?> m)) throw new ModelFormatException(file, "checkpoint is not a dict of tensors");
        for (String w : WRAPPERS) {
            if (m.get(w) instanceof Map<?, ?> inner) return inner;
        }
        return m;
    }

    private static TensorData tensor(Path file, String name, RestrictedUnpickler.TensorRef t, byte[] data, ByteOrder order) {
        String type = t.storage().type();
        int elem = switch (type) {
            case "DoubleStorage", "LongStorage" -> 8;
            case "FloatStorage", "IntStorage" -> 4;
            case "HalfStorage", "BFloat16Storage", "ShortStorage" -> 2;
            default -> 1;
        };
        long count = 1;
        int[] shape = new int[t.size().length];
        for (int i = 0; i < shape.length; i++) {
            shape[i] = Math.toIntExact(t.size()[i]);
            count *= shape[i];
        }
        // the highest element the view touches must lie inside the storage
        long last = t.offset();
        for (int i = 0; i < shape.length; i++) last += (shape[i] - 1L) * t.stride()[i];
        if (count > 0 && (t.offset() < 0 || (last + 1) * elem > data.length)) {
            throw new ModelFormatException(file, "tensor '" + name + "' reaches element " + last + " of a storage of " + data.length / elem + " (truncated?)");
        }
        MemorySegment seg = MemorySegment.ofArray(data);
        DType bulk = order == ByteOrder.LITTLE_ENDIAN && contiguous(shape, t.stride()) ? switch (type) {
            case "FloatStorage" -> DType.F32;
            case "HalfStorage" -> DType.F16;
            case "BFloat16Storage" -> DType.BF16;
            case "DoubleStorage" -> DType.F64;
            default -> null;
        } : null;
        if (bulk != null) return new TensorData(name, shape, bulk.toFloats(seg, t.offset() * elem, Math.toIntExact(count)));
        float[] out = new float[Math.toIntExact(count)];
        long[] idx = new long[shape.length];
        for (int i = 0; i < out.length; i++) {
            long e = t.offset();
            for (int d = 0; d < shape.length; d++) e += idx[d] * t.stride()[d];
            out[i] = element(seg, e * elem, type, order);
            for (int d = shape.length - 1; d >= 0; d--) {
                if (++idx[d] < shape[d]) break;
                idx[d] = 0;
            }
        }
        return new TensorData(name, shape, out);
    }

    /** Row-major strides, as torch.save writes most tensors: then the data is read in one bulk conversion. */
    private static boolean contiguous(int[] shape, long[] stride) {
        long expect = 1;
        for (int d = shape.length - 1; d >= 0; d--) {
            if (shape[d] != 1 && stride[d] != expect) return false;
            expect *= shape[d];
        }
        return true;
    }

    private static float element(MemorySegment s, long at, String type, ByteOrder order) {
        var f32 = java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(order);
        var i16 = java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(order);
        return switch (type) {
            case "FloatStorage" -> s.get(f32, at);
            case "HalfStorage" -> Float.float16ToFloat(s.get(i16, at));
            case "BFloat16Storage" -> Float.intBitsToFloat((s.get(i16, at) & 0xffff) << 16);
            case "DoubleStorage" -> (float) s.get(java.lang.foreign.ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(order), at);
            case "LongStorage" -> s.get(java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED.withOrder(order), at);
            case "IntStorage" -> s.get(java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED.withOrder(order), at);
            case "ShortStorage" -> s.get(i16, at);
            case "BoolStorage", "ByteStorage" -> s.get(java.lang.foreign.ValueLayout.JAVA_BYTE, at) & 0xff;
            default -> s.get(java.lang.foreign.ValueLayout.JAVA_BYTE, at);
        };
    }

    private static byte[] readEntry(Path file, ZipFile zip, ZipEntry e, long limit) throws IOException {
        if (e.getSize() > limit) throw new ModelFormatException(file, e.getName() + " is " + e.getSize() + " bytes, over the limit of " + limit);
        try (InputStream in = zip.getInputStream(e)) {
            byte[] b = in.readNBytes((int) Math.min(limit, e.getSize() >= 0 ? e.getSize() : limit));
            if (e.getSize() >= 0 && b.length != e.getSize()) throw new ModelFormatException(file, e.getName() + " is truncated");
            return b;
        } catch (ZipException ze) {
            throw new ModelFormatException(file, e.getName() + " is damaged: " + ze.getMessage());
        }
    }
}
