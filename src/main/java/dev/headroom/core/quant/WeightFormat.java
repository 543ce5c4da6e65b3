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
 *
 * <p>The compact formats hold two kinds of kernel in fp16 instead ({@link #keepsFp16}): thin ones,
 * with fewer than {@link #THIN} input or output channels (the first convolution, which reads the
 * image, and those that make the output image: few products feed each output, so rounding noise
 * does not average out), and those outside the network's repeated blocks, whose shape fewer than
 * {@link #REPEATED} kernels of the model share (the head and the upsampling tail). Quality is lost
 * there, not in the blocks: on the default model (RDN x2, crops of the six QualityTest photos)
 * fp8 on the output layer UPN3 (32 -> 12, 0.13% of the values) alone costs 1.06 dB and NF4 on
 * UPN2 (64 -> 32) alone 3.36 dB, while no block kernel alone costs more than 0.03 dB (fp8) or
 * 0.13 dB (NF4). The kept kernels are 6.4% of that model's values; scripts/bench/CompactSensitivity.java
 * measures all this.
 */
public enum WeightFormat {
    AS_STORED, FP16, BF16, INT8, FP8, NF4;

    /** A kernel with fewer input or output channels than this is thin: held in fp16 by int8, fp8 and NF4. */
    public static final int THIN = 16;
    /** A kernel whose shape fewer than this many kernels of the model have is outside the repeated blocks: held in fp16 by int8, fp8 and NF4. */
    public static final int REPEATED = 5;

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
        Map<String, Integer> shapes = new java.util.HashMap<>();
        for (String k : w.names()) if (w.get(k).rank() == 4) shapes.merge(java.util.Arrays.toString(w.get(k).shape()), 1, Integer::sum);
        Map<String, TensorData> out = new LinkedHashMap<>();
        for (String k : w.names()) {
            TensorData t = w.get(k);
            if (t.rank() != 4 || t.compact() != null) out.put(k, t);
            else out.put(k, compact() && keepsFp16(t, shapes.get(java.util.Arrays.toString(t.shape()))) ? FP16.convert(t) : convert(t));
        }
        return new MapWeights(out, "weights " + this);
    }

    /** Whether a compact format holds {@code kernel} (kh, kw, cin, cout), whose shape {@code sameShape} kernels of the model have, in fp16: thin, or outside the repeated blocks. */
    static boolean keepsFp16(TensorData kernel, int sameShape) {
        return Math.min(kernel.dim(2), kernel.dim(3)) < THIN || sameShape < REPEATED;
    }

    /** int8, fp8 or NF4. */
    public boolean compact() {
        return this == INT8 || this == FP8 || this == NF4;
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
