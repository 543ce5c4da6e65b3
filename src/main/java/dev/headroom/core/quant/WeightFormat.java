package dev.headroom.core.quant;

import dev.headroom.core.MapWeights;
import dev.headroom.core.Precision;
import dev.headroom.core.TensorData;
import dev.headroom.core.Weights;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * How convolution kernels are held (--weights): as the file stored them (AS_STORED), converted to
 * fp16 or bf16, or quantized on load to int8 or fp8 e4m3 with a scale per output channel, or NF4
 * in blocks of 64 ({@link Compact}). Biases and PReLU slopes stay fp32. Kernels already compact in
 * the file (a bitsandbytes NF4 safetensors) stay as they are.
 */
public enum WeightFormat {
    AS_STORED, FP16, BF16, INT8, FP8, NF4;

    public static WeightFormat parse(String s) {
        return switch (s.toLowerCase(java.util.Locale.ROOT)) {
            case "stored", "as-stored" -> AS_STORED;
            case "fp16", "f16" -> FP16;
            case "bf16" -> BF16;
            case "int8" -> INT8;
            case "fp8", "e4m3" -> FP8;
            case "nf4" -> NF4;
            default -> throw new IllegalArgumentException("weights '" + s + "': use fp16, bf16, int8, fp8 or nf4");
        };
    }

    @Override
    public String toString() {
        return this == AS_STORED ? "as stored" : name().toLowerCase(java.util.Locale.ROOT);
    }

    /** {@code w} with every 4-d kernel (kh, kw, cin, cout) held in this format. */
    public Weights apply(Weights w) {
        if (this == AS_STORED) return w;
        Map<String, TensorData> out = new LinkedHashMap<>();
        for (String k : w.names()) {
            TensorData t = w.get(k);
            out.put(k, t.rank() == 4 && t.compact() == null ? convert(t) : t);
        }
        return new MapWeights(out, "weights " + this);
    }

    private TensorData convert(TensorData t) {
        float[] v = t.data();
        int cout = t.dim(3);
        return switch (this) {
            case AS_STORED -> t;
            case FP16, BF16 -> {
                Precision p = this == FP16 ? Precision.F16 : Precision.BF16;
                short[] bits = new short[v.length];
                for (int i = 0; i < v.length; i++) bits[i] = p.toBits(v[i]);
                yield new TensorData(t.name(), t.shape(), new TensorData.Halves() {
                    public Precision precision() { return p; }
                    public long count() { return bits.length; }
                    public void copy(long from, short[] dst, int at, int count) { System.arraycopy(bits, (int) from, dst, at, count); }
                });
            }
            case INT8 -> new TensorData(t.name(), t.shape(), Compact.int8(v, cout));
            case FP8 -> new TensorData(t.name(), t.shape(), Compact.fp8(v, cout));
            case NF4 -> new TensorData(t.name(), t.shape(), Compact.nf4(v, 64));
        };
    }
}
