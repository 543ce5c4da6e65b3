package dev.headroom.core;

import java.util.Arrays;

/**
 * A named host tensor, row-major over {@code shape}. Weights of every file format end up as these;
 * convolution kernels are (kh, kw, cin, cout).
 *
 * <p>Values are either fp32 in a heap array, or 16-bit patterns (fp16, bf16) kept where the file
 * put them ({@link Halves}: a memory-mapped safetensors file), so a loaded 2 GB fp16 model takes
 * about 2 GB of host memory, not 4. {@link #data} widens the latter on every call (a layer's
 * worth, when it is prepared); {@link #halves} gives the patterns as they are, for a device that
 * computes in that precision. A PyTorch kernel (cout, cin, kh, kw) stays in its file's order and
 * is read through {@link #oihwToHwio}'s index mapping.
 */
public final class TensorData {
    /** 16-bit patterns somewhere (a mapped file): element {@code i} of the stored order. */
    public interface Halves {
        Precision precision();

        long count();

        /** Copies {@code count} patterns from element {@code from} into {@code dst} at {@code at}. */
        void copy(long from, short[] dst, int at, int count);
    }

    private final String name;
    private final int[] shape;
    private final float[] data;      // fp32 values, or null
    private final Halves halves;     // 16-bit values, or null
    private final dev.headroom.core.quant.Compact compact;   // int8/fp8/NF4 values, or null
    private final boolean oihw;      // halves or compact values are stored (cout, cin, kh, kw) while shape is (kh, kw, cin, cout)

    public TensorData(String name, int[] shape, float[] data) {
        this(name, shape, data, null, null, false);
        checkCount(data.length);
    }

    /** A tensor held compact (int8, fp8 or NF4: {@link dev.headroom.core.quant.Compact}), expanded by {@link #data} when used. */
    public TensorData(String name, int[] shape, dev.headroom.core.quant.Compact compact) {
        this(name, shape, null, null, compact, false);
        checkCount(compact.count());
    }

    /** A tensor whose values stay 16-bit patterns in {@code halves}. */
    public TensorData(String name, int[] shape, Halves halves) {
        this(name, shape, null, halves, null, false);
        if (halves.precision().bytes != 2) throw new IllegalArgumentException("tensor " + name + ": halves must be fp16 or bf16, not " + halves.precision());
        checkCount(halves.count());
    }

    private TensorData(String name, int[] shape, float[] data, Halves halves, dev.headroom.core.quant.Compact compact, boolean oihw) {
        this.name = name;
        this.shape = shape.clone();
        this.data = data;
        this.halves = halves;
        this.compact = compact;
        this.oihw = oihw;
    }

    private void checkCount(long have) {
        long n = 1;
        for (int d : shape) n *= d;
        if (n != have) throw new IllegalArgumentException("tensor " + name + ": shape " + Arrays.toString(shape) + " holds " + n + " values, data has " + have);
    }

    public String name() {
        return name;
    }

    public int[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    public int dim(int i) {
        return shape[i < 0 ? shape.length + i : i];
    }

    public long count() {
        return data != null ? data.length : halves != null ? halves.count() : compact.count();
    }

    /**
     * The precision the values are held in: F32, or F16/BF16 when they stay as the file stored
     * them; F32 too for compact values, which expand to fp32 ({@link #compact} says how they are held).
     */
    public Precision stored() {
        return halves != null ? halves.precision() : Precision.F32;
    }

    /** The compact storage (int8, fp8, NF4), or null. */
    public dev.headroom.core.quant.Compact compact() {
        return compact;
    }

    /**
     * Whether 16-bit or compact values are stored (cout, cin, kh, kw), as PyTorch keeps a kernel,
     * while {@link #shape} is (kh, kw, cin, cout): a device that expands compact codes itself must
     * read them in that order.
     */
    public boolean storedOihw() {
        return oihw;
    }

    /** Bytes the values take in host memory (or in the mapped file). */
    public long storedBytes() {
        return compact != null ? compact.bytes() : count() * stored().bytes;
    }

    /** The same values under another name. */
    public TensorData renamed(String to) {
        return new TensorData(to, shape, data, halves, compact, oihw);
    }

    /**
     * fp32 values in this tensor's order: the array itself, or (16-bit or compact storage) a new
     * widened or expanded array on every call.
     */
    public float[] data() {
        if (data != null) return data;
        if (compact != null) return oihw ? hwio(compact.expand()) : compact.expand();
        short[] h = halves();
        float[] out = new float[h.length];
        if (halves.precision() == Precision.F16) {
            for (int i = 0; i < h.length; i++) out[i] = Float.float16ToFloat(h[i]);
        } else {
            for (int i = 0; i < h.length; i++) out[i] = Float.intBitsToFloat((h[i] & 0xffff) << 16);
        }
        return out;
    }

    /** The 16-bit patterns in this tensor's order (a new array); only for {@link #stored} F16 or BF16. */
    public short[] halves() {
        if (halves == null) throw new IllegalStateException("tensor " + name + " is stored in fp32, not 16 bits");
        int n = Math.toIntExact(halves.count());
        short[] src = new short[n];
        halves.copy(0, src, 0, n);
        if (!oihw) return src;
        int kh = shape[0], kw = shape[1], ci = shape[2], co = shape[3];
        short[] out = new short[n];
        for (int o = 0; o < co; o++)
            for (int i = 0; i < ci; i++)
                for (int y = 0; y < kh; y++)
                    for (int x = 0; x < kw; x++)
                        out[((y * kw + x) * ci + i) * co + o] = src[((o * ci + i) * kh + y) * kw + x];
        return out;
    }

    /** fp32 values stored (cout, cin, kh, kw) in this tensor's (kh, kw, cin, cout) order. */
    private float[] hwio(float[] src) {
        return hwio(src, shape[0], shape[1], shape[2], shape[3]);
    }

    // out is (kh, kw, cin, cout), src is (cout, cin, kh, kw)
    private static float[] hwio(float[] src, int kh, int kw, int ci, int co) {
        float[] out = new float[src.length];
        for (int o = 0; o < co; o++)
            for (int i = 0; i < ci; i++)
                for (int y = 0; y < kh; y++)
                    for (int x = 0; x < kw; x++)
                        out[((y * kw + x) * ci + i) * co + o] = src[((o * ci + i) * kh + y) * kw + x];
        return out;
    }

    public String shapeString() {
        return Arrays.toString(shape);
    }

    /** PyTorch conv kernel (cout, cin, kh, kw) to headroom's (kh, kw, cin, cout); 16-bit values are reordered when read, not copied now. */
    public TensorData oihwToHwio() {
        if (shape.length != 4) throw new IllegalArgumentException("tensor " + name + ": expected a 4-d kernel, got " + shapeString());
        int co = shape[0], ci = shape[1], kh = shape[2], kw = shape[3];
        int[] hwio = {kh, kw, ci, co};
        if (data == null) {
            if (oihw) throw new IllegalStateException("tensor " + name + " transposed twice");
            return new TensorData(name, hwio, null, halves, compact, true);
        }
        return new TensorData(name, hwio, hwio(data, kh, kw, ci, co));
    }

    @Override
    public String toString() {
        return name + " " + shapeString() + " " + (compact != null ? compact.scheme() : stored());
    }
}
