package dev.headroom.runtime;

import dev.headroom.core.Precision;

/**
 * An NHWC tensor (fp32 on the host; fp32, fp16 or bf16 on a device, {@link #precision}): a view of {@code c} channels starting at channel {@code offset} of a buffer
 * whose pixels are {@code stride} channels apart. A plain tensor has offset 0 and stride == c; a
 * channel slice of a concatenation buffer has neither, which is how producers write into a
 * concatenation without a copy.
 *
 * <p>The buffer is either on the host ({@link #data}, starting at element {@link #base}) or on a
 * device ({@link #device}, with {@code data} null); a backend's ops accept only their own kind. A
 * host tensor the CPU backend's memory handed out has both: its values in a pooled heap segment
 * and the allocator's block in {@code device}, which is what the backend frees.
 */
public final class Tensor {
    public final float[] data;
    public final DeviceBuffer device;
    /** Element type: always F32 on the host; what the backend computes in on a device. */
    public final Precision precision;
    public final int n, h, w, c;
    public final int stride;
    public final int offset;
    /** Index in {@link #data} of the buffer's first element (0 unless the array is a pooled segment). */
    public final int base;

    private Tensor(float[] data, int base, DeviceBuffer device, Precision precision, int n, int h, int w, int c, int stride, int offset) {
        if (n < 1 || h < 1 || w < 1 || c < 1) {
            throw new IllegalArgumentException("tensor shape (" + n + "," + h + "," + w + "," + c + ") has an empty dimension");
        }
        if (offset + c > stride) throw new IllegalArgumentException("channel slice [" + offset + "," + (offset + c) + ") outside " + stride + " channels");
        long need = (long) n * h * w * stride;
        if (data != null ? base + need > data.length : need * precision.bytes > device.bytes()) throw new IllegalArgumentException("tensor larger than its buffer");
        this.data = data;
        this.device = device;
        this.precision = precision;
        this.n = n;
        this.h = h;
        this.w = w;
        this.c = c;
        this.stride = stride;
        this.offset = offset;
        this.base = base;
    }

    /** A new zeroed (n, h, w, c) tensor. */
    public static Tensor allocate(int n, int h, int w, int c) {
        long size = (long) n * h * w * c;
        if (size > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("tensor (" + n + "," + h + "," + w + "," + c + ") has " + size
                    + " values, more than one host array holds; use smaller tiles");
        }
        return new Tensor(new float[(int) size], 0, null, Precision.F32, n, h, w, c, c, 0);
    }

    /** A dense (n, h, w, c) tensor of {@code precision} elements in device memory the caller allocated. */
    public static Tensor onDevice(DeviceBuffer buffer, Precision precision, int n, int h, int w, int c) {
        return new Tensor(null, 0, buffer, precision, n, h, w, c, c, 0);
    }

    /** A dense fp32 (n, h, w, c) tensor at element {@code base} of a pooled host segment; {@code block} is what frees it. */
    public static Tensor pooled(float[] segment, int base, DeviceBuffer block, int n, int h, int w, int c) {
        return new Tensor(segment, base, block, Precision.F32, n, h, w, c, c, 0);
    }

    public boolean onHost() {
        return data != null;
    }

    /** Wraps a dense (n, h, w, c) array. */
    public static Tensor wrap(float[] data, int n, int h, int w, int c) {
        if ((long) n * h * w * c != data.length) throw new IllegalArgumentException("array of " + data.length + " is not (" + n + "," + h + "," + w + "," + c + ")");
        return new Tensor(data, 0, null, Precision.F32, n, h, w, c, c, 0);
    }

    /** Channels [from, from + count) of this tensor, sharing its buffer. */
    public Tensor slice(int from, int count) {
        if (from < 0 || from + count > c) throw new IllegalArgumentException("slice [" + from + "," + (from + count) + ") of " + c + " channels");
        return new Tensor(data, base, device, precision, n, h, w, count, stride, offset + from);
    }

    /**
     * Rows [from, to) of this single-image tensor, sharing its buffer: in NHWC the rows of one
     * image are contiguous, so a band of rows is a view at a later address, never a copy.
     */
    public Tensor rows(int from, int to) {
        if (n != 1) throw new IllegalArgumentException("row bands of a batch of " + n + " are not contiguous");
        if (from < 0 || to > h || from >= to) throw new IllegalArgumentException("rows [" + from + "," + to + ") of " + h);
        if (from == 0 && to == h) return this;
        long skip = (long) from * w * stride;
        DeviceBuffer d = device == null ? null
                : new ArenaView(device.address() + skip * precision.bytes, device.bytes() - skip * precision.bytes);
        return new Tensor(data, data == null ? base : Math.toIntExact(base + skip), d, precision, 1, to - from, w, c, stride, offset);
    }

    public boolean dense() {
        return stride == c && offset == 0;
    }

    /** Index of channel 0 of pixel (b, y, x) in {@link #data}. */
    public int index(int b, int y, int x) {
        return base + ((b * h + y) * w + x) * stride + offset;
    }

    public float get(int b, int y, int x, int ch) {
        return data[index(b, y, x) + ch];
    }

    public void set(int b, int y, int x, int ch, float v) {
        data[index(b, y, x) + ch] = v;
    }

    public long elements() {
        return (long) n * h * w * c;
    }

    public long bytes() {
        return elements() * precision.bytes;
    }

    /** A dense copy of this (host) view. */
    public float[] toArray() {
        if (data == null) throw new IllegalStateException("toArray on a device tensor; download it first");
        float[] out = new float[Math.toIntExact(elements())];
        int i = 0;
        for (int b = 0; b < n; b++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    System.arraycopy(data, index(b, y, x), out, i, c);
                    i += c;
                }
        return out;
    }

    public String shape() {
        return "(" + n + "," + h + "," + w + "," + c + ")";
    }

    @Override
    public String toString() {
        return "Tensor" + shape() + (dense() ? "" : " slice@" + offset + "/" + stride) + (data == null ? " " + precision + " on device" : "");
    }
}
