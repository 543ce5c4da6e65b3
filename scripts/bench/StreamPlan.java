// Weight streaming's planner (StreamSplit.plan, the cost model) against the earlier rule (StreamSplit.choose:
// 2 slots, layers used more than once, then walk order) on the synthetic Real-ESRGAN x4 (rrdbnet-x4), at
// budgets of a quarter, a third and a half of its kernels: slots, bytes streamed a pass, and the MODELLED
// time of a pass (StreamSplit.passNanos, the cost model's own estimate, not a measurement), with the
// H200's rates (fp16 kernels, a 256 tile) and the CPU's (fp32, a 64 tile).
//   ./test -DskipTests
//   java -cp "target/classes:target/lib/*" scripts/bench/StreamPlan.java [GPU_TILE] [CPU_TILE]    (default 256 64)
import dev.headroom.core.graph.Graph;
import dev.headroom.core.graph.Node;
import dev.headroom.core.graph.Op;
import dev.headroom.core.residency.StreamSplit;
import dev.headroom.models.Model;
import dev.headroom.models.SyntheticModels;
import java.util.ArrayList;
import java.util.List;

class StreamPlan {
    public static void main(String[] args) {
        Model m = SyntheticModels.build("rrdbnet-x4", 7);
        Graph g = m.graph();
        List<Node> convs = new ArrayList<>();
        for (Node n : g.nodes()) if (n.op() instanceof Op.Conv2d) convs.add(n);
        int gpuTile = args.length > 0 ? Integer.parseInt(args[0]) : 256, cpuTile = args.length > 1 ? Integer.parseInt(args[1]) : 64;
        report("H200 fp16, tile " + gpuTile, g, convs, 2, gpuTile, StreamSplit.Cost.H200);
        report("CPU fp32, tile " + cpuTile, g, convs, 4, cpuTile, StreamSplit.Cost.CPU);
    }

    static void report(String what, Graph g, List<Node> convs, int elementBytes, int tile, StreamSplit.Cost cost) {
        int n = convs.size();
        long[] bytes = new long[n], macs = new long[n];
        int[] uses = new int[n];
        int[] hs = g.heights(tile), ws = g.widths(tile);
        long total = 0;
        for (int i = 0; i < n; i++) {
            Op.Conv2d c = (Op.Conv2d) convs.get(i).op();
            bytes[i] = (long) c.kh() * c.kw() * c.cin() * c.cout() * elementBytes;
            macs[i] = (long) c.kh() * c.kw() * c.cin() * c.cout() * hs[convs.get(i).id()] * ws[convs.get(i).id()];
            uses[i] = 1;
            total += bytes[i];
        }
        System.out.printf("%s: %d layers, %.2f MB of kernels%n", what, n, total / 1e6);
        for (int d : new int[] {4, 3, 2}) {
            long budget = total / d;
            StreamSplit old = StreamSplit.choose(bytes, uses, budget, 2), plan = StreamSplit.plan(bytes, uses, macs, budget, 0, cost);
            double resident = new StreamSplit(all(n), 0, 0, total, 0).passNanos(bytes, macs, cost);
            System.out.printf("  budget 1/%d: earlier rule %d slots, %d streamed, %.2f MB a pass, modelled %.3f ms (x%.3f of resident); "
                            + "planner %d slots, %d streamed, %.2f MB a pass, modelled %.3f ms (x%.3f)%n", d,
                    old.slots(), old.streamedCount(), old.streamedBytes() / 1e6, old.passNanos(bytes, macs, cost) / 1e6, old.passNanos(bytes, macs, cost) / resident,
                    plan.slots(), plan.streamedCount(), plan.streamedBytes() / 1e6, plan.passNanos(bytes, macs, cost) / 1e6, plan.passNanos(bytes, macs, cost) / resident);
        }
    }

    static boolean[] all(int n) {
        boolean[] b = new boolean[n];
        java.util.Arrays.fill(b, true);
        return b;
    }
}
