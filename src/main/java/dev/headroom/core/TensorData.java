package dev.headroom.core;

import java.util.Arrays;

/**
 * A named host tensor in fp32, row-major over {@code shape}. Weights of every file format end up
 * as these; convolution kernels are (kh, kw, cin, cout).
 */
public record TensorData(String name, int[] shape, float[] data) {
    public TensorData {
        shape = shape.clone();
        long n = 1;
        for (int d : shape) n *= d;
        if (n != data.length) {
            throw new IllegalArgumentException("tensor " + name + ": shape " + Arrays.toString(shape) + " holds " + n + " values, data has " + data.length);
        }
    }

    @Override
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
        return data.length;
    }

    public String shapeString() {
        return Arrays.toString(shape);
    }

    /** PyTorch conv kernel (cout, cin, kh, kw) to headroom's (kh, kw, cin, cout). */
    public TensorData oihwToHwio() {
        if (shape.length != 4) throw new IllegalArgumentException("tensor " + name + ": expected a 4-d kernel, got " + shapeString());
        int co = shape[0], ci = shape[1], kh = shape[2], kw = shape[3];
        float[] out = new float[data.length];
        for (int o = 0; o < co; o++)
            for (int i = 0; i < ci; i++)
                for (int y = 0; y < kh; y++)
                    for (int x = 0; x < kw; x++)
                        out[((y * kw + x) * ci + i) * co + o] = data[((o * ci + i) * kh + y) * kw + x];
        return new TensorData(name, new int[] {kh, kw, ci, co}, out);
    }
}
