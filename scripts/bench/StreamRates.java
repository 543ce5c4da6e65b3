// The CPU's rates for weight streaming's cost model (StreamSplit.Cost.CPU): multiply-adds per ns of
// convolutions, and bytes per ns of a streamed layer's "copy" (preparing its fp32 layout into a slot).
// Runs the synthetic Real-ESRGAN x4 (rrdbnet-x4) on a TILE x TILE input, resident and with nearly
// every kernel streamed through one slot, RUNS passes each (medians); the difference is the copies.
//   ./test -DskipTests
//   java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp "target/classes:target/lib/*" \
//        scripts/bench/StreamRates.java [TILE] [RUNS]      (default 64 5; run from the repository root)
import dev.headroom.core.graph.Graph;
import dev.headroom.core.graph.Node;
import dev.headroom.core.graph.Op;
import dev.headroom.models.Model;
import dev.headroom.models.SyntheticModels;
import dev.headroom.runtime.GraphRunner;
import dev.headroom.runtime.PreparedWeights;
import dev.headroom.runtime.Tensor;
import dev.headroom.runtime.cpu.CpuOps;
import java.util.Arrays;
import java.util.SplittableRandom;

class StreamRates {
    public static void main(String[] args) {
        int tile = args.length > 0 ? Integer.parseInt(args[0]) : 64, runs = args.length > 1 ? Integer.parseInt(args[1]) : 5;
        Model m = SyntheticModels.build("rrdbnet-x4", 7);
        Graph g = m.graph();
        int[] hs = g.heights(tile), ws = g.widths(tile);
        long macs = 0, kernels = 0;
        for (Node n : g.nodes()) {
            if (n.op() instanceof Op.Conv2d c) {
                macs += (long) c.kh() * c.kw() * c.cin() * c.cout() * hs[n.id()] * ws[n.id()];
            }
        }
        SplittableRandom r = new SplittableRandom(1);
        float[] px = new float[tile * tile * 3];
        for (int i = 0; i < px.length; i++) px[i] = (float) r.nextDouble();
        Tensor in = Tensor.wrap(px, 1, tile, tile, 3);
        try (CpuOps ops = new CpuOps()) {
            for (Node n : g.nodes()) if (n.op() instanceof Op.Conv2d c) kernels += ops.kernelBytes(c, m.weights().get(c.weight()));
            double resident;
            try (GraphRunner run = new GraphRunner(g, m.weights(), ops)) {
                resident = median(run, in, runs);
            }
            long budget = kernels / 20;
            try (PreparedWeights p = PreparedWeights.streamed(g, m.weights(), ops, budget, 1); GraphRunner run = new GraphRunner(g, p, ops)) {
                double streamed = median(run, in, runs);
                long copied = p.stream().split().streamedBytes();
                System.out.printf("tile %d: %.3e multiply-adds a pass, resident %.1f ms -> %.2f MAC/ns%n", tile, (double) macs, resident / 1e6, macs / resident);
                System.out.printf("streamed (%s): %.1f ms, %.1f MB prepared a pass -> %.2f B/ns%n", p.stream().describe(), streamed / 1e6,
                        copied / 1e6, copied / Math.max(1, streamed - resident));
            }
        }
    }

    static double median(GraphRunner run, Tensor in, int runs) {
        run.run(in);   // warm-up
        double[] t = new double[runs];
        for (int i = 0; i < runs; i++) {
            long t0 = System.nanoTime();
            run.run(in);
            t[i] = System.nanoTime() - t0;
        }
        Arrays.sort(t);
        return t[runs / 2];
    }
}
