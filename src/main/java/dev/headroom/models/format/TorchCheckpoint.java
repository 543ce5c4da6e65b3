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

    /** A storage entry may inflate to at most this many times its compressed size (torch.save stores them uncompressed). */
    static final long MAX_RATIO = 32;

    public static WeightFile read(Path file) {
        return read(file, name -> true, names -> { });
    }

    /**
     * Only the tensors whose names {@code keep} accepts are read (their storages are never
     * inflated otherwise): the VAE of a whole .ckpt checkpoint. The result may be empty; a
     * checkpoint that names no tensor at all is still an error.
     */
    public static WeightFile read(Path file, java.util.function.Predicate<String> keep) {
        return read(file, keep, names -> { });
    }

    /**
     * Reads the tensors {@code keep} accepts. Every such tensor's view, storage entry and size is
     * checked against the archive, and {@code namesCheck} sees their names, before any storage is
     * inflated.
     */
    public static WeightFile read(Path file, java.util.function.Predicate<String> keep, java.util.function.Consumer<java.util.Set<String>> namesCheck) {
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
            Map<String, RestrictedUnpickler.TensorRef> refs = new LinkedHashMap<>();
            for (Map.Entry<?, ?> e : dict.entrySet()) {
                if (e.getValue() instanceof RestrictedUnpickler.TensorRef t) refs.put(String.valueOf(e.getKey()), t);
            }
            if (refs.isEmpty()) throw new ModelFormatException(file, "checkpoint holds no tensors");
            refs.keySet().removeIf(keep.negate());
            Map<String, ZipEntry> entries = budget(file, zip, prefix, refs);
            namesCheck.accept(java.util.Collections.unmodifiableSet(refs.keySet()));
            Map<String, TensorData> out = new LinkedHashMap<>();
            Map<String, byte[]> storages = new LinkedHashMap<>();
            Map<List<Object>, float[]> views = new java.util.HashMap<>();   // identical views of one storage share their values
            java.util.Set<String> types = new java.util.TreeSet<>();
            for (Map.Entry<String, RestrictedUnpickler.TensorRef> e : refs.entrySet()) {
                String name = e.getKey();
                RestrictedUnpickler.TensorRef t = e.getValue();
                byte[] data = storages.get(t.storage().key());
                if (data == null) {
                    data = readEntry(file, zip, entries.get(t.storage().key()), Integer.MAX_VALUE - 16);
                    storages.put(t.storage().key(), data);
                }
                List<Object> view = List.of(t.storage().key(), t.offset(), java.util.Arrays.toString(t.size()), java.util.Arrays.toString(t.stride()));
                float[] shared = views.get(view);
                TensorData td = shared != null ? new TensorData(name, ints(t.size()), shared) : tensor(file, name, t, data, order);
                views.putIfAbsent(view, td.data());
                out.put(name, td);
                types.add(t.storage().type().replace("Storage", "").toLowerCase());
            }
            return new WeightFile(out, types);
        } catch (IOException e) {
            throw new ModelFormatException(file, "cannot read: " + e.getMessage(), e);
        } catch (ArithmeticException | ClassCastException | IllegalArgumentException | NullPointerException | IndexOutOfBoundsException e) {
            throw new ModelFormatException(file, "damaged checkpoint: tensor metadata does not add up (" + e.getClass().getSimpleName() + ")");
        }
    }

    /**
     * Checks, before any storage is inflated, that every tensor is a view inside its storage that
     * does not overlap itself (stride 0 over a tiny storage would otherwise be widened into
     * gigabytes), that each storage entry exists, holds what the pickle says and does not inflate
     * past {@link #MAX_RATIO} times its compressed size, and that the tensors together do not view
     * more than twice the bytes of their storages (thousands of names over the same bytes).
     */
    private static Map<String, ZipEntry> budget(Path file, ZipFile zip, String prefix, Map<String, RestrictedUnpickler.TensorRef> refs) {
        Map<String, ZipEntry> entries = new LinkedHashMap<>();
        long storageBytes = 0, viewBytes = 0;
        for (Map.Entry<String, RestrictedUnpickler.TensorRef> e : refs.entrySet()) {
            String name = e.getKey();
            RestrictedUnpickler.TensorRef t = e.getValue();
            String key = t.storage().key();
            int elem = elementBytes(t.storage().type());
            ZipEntry se = entries.get(key);
            if (se == null) {
                se = zip.getEntry(prefix + "data/" + key);
                if (se == null) throw new ModelFormatException(file, "tensor '" + name + "' names storage " + key + ", which the archive lacks (truncated?)");
                long size = se.getSize(), packed = se.getCompressedSize();
                if (size < 0 || packed < 0) throw new ModelFormatException(file, "storage " + key + " does not state its size");
                if (size > Integer.MAX_VALUE - 16) throw new ModelFormatException(file, "storage " + key + " of " + size + " bytes is over headroom's 2 GiB limit for one storage");
                if (se.getMethod() != ZipEntry.STORED && size > packed * MAX_RATIO + (1 << 20)) {
                    throw new ModelFormatException(file, "storage " + key + " inflates from " + packed + " to " + size + " bytes, over " + MAX_RATIO
                            + " times; torch.save does not compress storages (a decompression bomb?)");
                }
                entries.put(key, se);
                storageBytes += size;
            }
            if (t.size().length > 8 || t.stride().length != t.size().length) {
                throw new ModelFormatException(file, "tensor '" + name + "' has " + t.size().length + " dimensions and " + t.stride().length + " strides");
            }
            long count = 1, last = t.offset();
            for (int d = 0; d < t.size().length; d++) {
                if (t.size()[d] < 0 || t.size()[d] > Integer.MAX_VALUE || t.stride()[d] < 0) {
                    throw new ModelFormatException(file, "tensor '" + name + "' has size " + java.util.Arrays.toString(t.size()) + " and stride " + java.util.Arrays.toString(t.stride()));
                }
                count = Math.multiplyExact(count, t.size()[d]);
                if (t.size()[d] > 0) last = Math.addExact(last, Math.multiplyExact(t.size()[d] - 1, t.stride()[d]));
            }
            if (count == 0) continue;
            if (t.offset() < 0 || Math.multiplyExact(last + 1, elem) > se.getSize() || count > t.storage().numel() && t.storage().numel() > 0) {
                throw new ModelFormatException(file, "tensor '" + name + "' reaches element " + last + " of storage " + key + " of " + se.getSize() / elem + " elements (truncated?)");
            }
            if (overlapsItself(t.size(), t.stride())) {
                throw new ModelFormatException(file, "tensor '" + name + "' is a view whose elements overlap (size " + java.util.Arrays.toString(t.size())
                        + ", stride " + java.util.Arrays.toString(t.stride()) + "); headroom does not widen such views");
            }
            // every name counts, shared or not: an architecture widens and transposes each weight it binds
            viewBytes = Math.addExact(viewBytes, Math.multiplyExact(count, elem));
        }
        if (viewBytes > 2 * storageBytes + (1 << 20)) {
            throw new ModelFormatException(file, "tensors view " + viewBytes + " bytes of storages holding " + storageBytes
                    + "; many tensors over the same bytes are not a state dict headroom reads");
        }
        return entries;
    }

    /** Whether two indices of the view reach the same element: strides sorted, each must step over all the smaller ones' span. */
    static boolean overlapsItself(long[] size, long[] stride) {
        Integer[] dims = new Integer[size.length];
        for (int i = 0; i < dims.length; i++) dims[i] = i;
        java.util.Arrays.sort(dims, java.util.Comparator.comparingLong(i -> stride[i]));
        long span = 1;   // elements from the first to one past the last reached by the dims so far
        for (int d : dims) {
            if (size[d] <= 1) continue;
            if (stride[d] < span) return true;
            span = Math.addExact(Math.multiplyExact(size[d] - 1, stride[d]), span);
        }
        return false;
    }

    private static int[] ints(long[] size) {
        int[] out = new int[size.length];
        for (int i = 0; i < out.length; i++) out[i] = Math.toIntExact(size[i]);
        return out;
    }

    private static int elementBytes(String type) {
        return switch (type) {
            case "DoubleStorage", "LongStorage" -> 8;
            case "FloatStorage", "IntStorage" -> 4;
            case "HalfStorage", "BFloat16Storage", "ShortStorage" -> 2;
            default -> 1;
        };
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
        int elem = elementBytes(type);
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
