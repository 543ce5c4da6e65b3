package dev.headroom.runtime.gpu;

import dev.headroom.core.MapWeights;
import dev.headroom.core.Precision;
import dev.headroom.core.TensorData;
import dev.headroom.core.Weights;
import dev.headroom.core.graph.Graph;
import dev.headroom.core.graph.Node;
import dev.headroom.core.graph.Op;
import dev.headroom.core.quant.Compact;
import dev.headroom.core.quant.WeightFormat;
import dev.headroom.core.residency.StreamSplit;
import dev.headroom.models.arch.Detected;
import dev.headroom.models.arch.TorchArchitectures;
import dev.headroom.runtime.GraphRunner;
import dev.headroom.runtime.PreparedWeights;
import dev.headroom.runtime.Tensor;
import dev.headroom.runtime.memory.MemoryOptions;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Weight streaming on a GPU, side by side in one process: a synthetic wide RRDBNet x4 (256
 * features, growth 128, 23 blocks: about 0.5 GB of fp16 kernels) run fully resident and with its
 * kernels under a budget of a third of their bytes (the rest streamed through prefetch slots), in
 * fp16 and in NF4 (kept compact on the device and expanded before each convolution). Prints one
 * line per configuration: time per tile (median of the runs, the device's forward pass: upload,
 * pass, synchronise), the split, and whether the output equals the resident run's bit for bit.
 *
 * <pre>java ... -Dheadroom.conv-timing=full dev.headroom.runtime.gpu.WeightStreamBench [tile] [runs] [features] [growth] [blocks]</pre>
 */
public final class WeightStreamBench {
    private WeightStreamBench() {}

    record Result(String name, double medianMs, double minMs, float[] out, String split) {}

    public static void main(String[] args) {
        int tile = args.length > 0 ? Integer.parseInt(args[0]) : 512, runs = args.length > 1 ? Integer.parseInt(args[1]) : 5;
        int nf = args.length > 2 ? Integer.parseInt(args[2]) : 256, gc = args.length > 3 ? Integer.parseInt(args[3]) : 128;
        int blocks = args.length > 4 ? Integer.parseInt(args[4]) : 23;
        long t0 = System.nanoTime();
        Detected d = TorchArchitectures.detect(wide(nf, gc, blocks, new SplittableRandom(15)));
        Graph g = d.graph();
        Weights fp32 = new MapWeights(d.weights(), "synthetic wide RRDBNet");
        Weights fp16 = WeightFormat.FP16.apply(fp32), nf4 = nf4(d.weights());
        System.out.printf("model: %s %s, built and quantized in %.1f s%n", d.family(), d.details(), (System.nanoTime() - t0) / 1e9);
        SplittableRandom r = new SplittableRandom(1);
        float[] px = new float[tile * tile * 3];
        for (int i = 0; i < px.length; i++) px[i] = (float) r.nextDouble();
        Tensor in = Tensor.wrap(px, 1, tile, tile, 3);
        try (CudaDevice dev = CudaDevice.open(0, MemoryOptions.DEFAULT); CudaOps s = (CudaOps) dev.openSession(Precision.F16)) {
            long k16 = kernelBytes(g, fp16, s), k4 = kernelBytes(g, nf4, s);
            System.out.printf("kernels on the device: fp16 %.1f MB, nf4 %.1f MB; tile %dx%d, %d timed runs each%n", k16 / 1e6, k4 / 1e6, tile, tile, runs);
            // the figures that matter first, so a run cut short still has them
            Result res16 = report(run("fp16 resident", g, fp16, s, in, Long.MAX_VALUE, 2, runs, true), null);
            Result str16 = report(run("fp16 streamed 1/3, 2 slots", g, fp16, s, in, k16 / 3, 2, runs, true), res16);
            Result res4 = report(run("nf4 resident", g, nf4, s, in, Long.MAX_VALUE, 2, runs, true), res16);
            Result str4 = report(run("nf4 streamed 1/3 of nf4, 2 slots", g, nf4, s, in, k4 / 3, 2, runs, true), res4);
            System.out.printf("RESULT nf4 streamed / fp16 streamed (2 slots): x%.3f%n", str4.medianMs / str16.medianMs);
            report(run("fp16 streamed 1/3, 3 slots", g, fp16, s, in, k16 / 3, 3, runs, true), res16);
            report(run("fp16 resident eager", g, fp16, s, in, Long.MAX_VALUE, 2, runs, false), res16);
            report(run("nf4 under fp16's 1/3 budget", g, nf4, s, in, k16 / 3, 2, runs, true), res4);
        }
    }

    /** Prints {@code x} beside {@code ref} (time ratio; output bit for bit, where both are the same weights). */
    private static Result report(Result x, Result ref) {
        if (ref == null) {
            System.out.printf("RESULT %-34s median %8.2f ms  min %8.2f ms  %s%n", x.name, x.medianMs, x.minMs, x.split);
        } else {
            boolean same = x.name.substring(0, 4).equals(ref.name.substring(0, 4));
            System.out.printf("RESULT %-34s median %8.2f ms  min %8.2f ms  x%.3f of %s  output %s  %s%n", x.name, x.medianMs, x.minMs,
                    x.medianMs / ref.medianMs, ref.name, !same ? "(other weights)" : Arrays.equals(x.out, ref.out) ? "equal" : "DIFFERS", x.split);
        }
        return x;
    }

    /** WeightFormat.NF4's quantization, a tensor per core. */
    private static Weights nf4(Map<String, TensorData> w) {
        Map<String, TensorData> out = new java.util.concurrent.ConcurrentHashMap<>();
        w.entrySet().parallelStream().forEach(e -> {
            TensorData t = e.getValue();
            out.put(e.getKey(), t.rank() == 4 ? new TensorData(t.name(), t.shape(), Compact.nf4(t.data(), 64)) : t);
        });
        Map<String, TensorData> ordered = new LinkedHashMap<>();
        for (String k : w.keySet()) ordered.put(k, out.get(k));
        return new MapWeights(ordered, "weights nf4");
    }

    private static long kernelBytes(Graph g, Weights w, CudaOps s) {
        long b = 0;
        for (Node n : g.nodes()) if (n.op() instanceof Op.Conv2d c) b += s.kernelBytes(c, w.get(c.weight()));
        return b;
    }

    private static Result run(String name, Graph g, Weights w, CudaOps s, Tensor in, long budget, int slots, int runs, boolean record) {
        try {
            return measure(name, g, w, s, in, budget, slots, runs, record);
        } catch (RuntimeException e) {
            e.printStackTrace(System.out);
            return new Result(name + " FAILED", Double.NaN, Double.NaN, new float[0], e.toString());
        }
    }

    private static Result measure(String name, Graph g, Weights w, CudaOps s, Tensor in, long budget, int slots, int runs, boolean record) {
        long t0 = System.nanoTime();
        try (PreparedWeights p = budget == Long.MAX_VALUE ? PreparedWeights.prepare(g, w, s::prepareConv) : PreparedWeights.streamed(g, w, s, budget, slots);
             GraphRunner runner = new GraphRunner(g, p, s)) {
            runner.record(record);
            double prepare = (System.nanoTime() - t0) / 1e6;
            float[] out = runner.run(in).toArray();                    // first pass: convolution choices, expansion buffer
            runner.run(in, t -> { s.synchronize(); return null; });     // second: may record
            double[] ms = new double[runs];
            for (int i = 0; i < runs; i++) {
                long a = System.nanoTime();
                runner.run(in, t -> { s.synchronize(); return null; });
                ms[i] = (System.nanoTime() - a) / 1e6;
            }
            float[] last = runner.run(in).toArray();
            if (!Arrays.equals(out, last)) System.out.println(name + ": the first and last outputs DIFFER");
            Arrays.sort(ms);
            String split = "prepare " + Math.round(prepare) + " ms, replays " + runner.replays();
            if (p.stream() != null) {
                StreamSplit sp = p.stream().split();
                split += String.format(", %d of %d layers streamed, %d slots of %.2f MB, resident %.1f MB, copied %.1f MB a pass, %d copies",
                        sp.streamedCount(), sp.resident().length, sp.slots(), sp.slotBytes() / 1e6, sp.residentBytes() / 1e6, sp.streamedBytes() / 1e6, p.stream().loads());
            }
            float max = 0;
            boolean finite = true;
            for (float v : last) {
                finite &= Float.isFinite(v);
                max = Math.max(max, Math.abs(v));
            }
            split += ", max |out| " + max + (finite ? "" : " NOT FINITE");
            System.out.println(name + ": " + Arrays.toString(ms) + " ms; " + split);
            return new Result(name, ms[runs / 2], ms[0], last, split);
        }
    }

    /** A PyTorch-layout RRDBNet x4 state dict: {@code blocks} blocks of three dense blocks, {@code nf} features, growth {@code gc}. */
    static Map<String, TensorData> wide(int nf, int gc, int blocks, SplittableRandom r) {
        Map<String, TensorData> sd = new LinkedHashMap<>();
        conv(sd, r, "conv_first", 3, nf);
        for (int b = 0; b < blocks; b++)
            for (int k = 1; k <= 3; k++)
                for (int c = 1; c <= 5; c++) conv(sd, r, "body." + b + ".rdb" + k + ".conv" + c, nf + (c - 1) * gc, c == 5 ? nf : gc);
        for (String s : new String[] {"conv_body", "conv_up1", "conv_up2", "conv_hr"}) conv(sd, r, s, nf, nf);
        conv(sd, r, "conv_last", nf, 3);
        return sd;
    }

    /** Uniform values with a Kaiming-like spread (halved), a small bias. */
    private static void conv(Map<String, TensorData> sd, SplittableRandom r, String name, int cin, int cout) {
        double a = Math.sqrt(2.0 / (9 * cin)) * 0.5 * Math.sqrt(3);
        float[] w = new float[cout * cin * 9];
        for (int i = 0; i < w.length; i++) w[i] = (float) ((r.nextDouble() * 2 - 1) * a);
        float[] b = new float[cout];
        for (int i = 0; i < b.length; i++) b[i] = (float) ((r.nextDouble() * 2 - 1) * 0.01);
        sd.put(name + ".weight", new TensorData(name + ".weight", new int[] {cout, cin, 3, 3}, w));
        sd.put(name + ".bias", new TensorData(name + ".bias", new int[] {cout}, b));
    }
}
