package dev.headroom.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.graph.Act;
import dev.headroom.core.graph.Graph;
import dev.headroom.core.graph.GraphBuilder;
import dev.headroom.core.plan.ArenaPacker;
import dev.headroom.core.plan.MemoryPlan;
import dev.headroom.core.plan.Planner;
import dev.headroom.runtime.cpu.CpuMemoryModel;
import dev.headroom.runtime.cpu.CpuOps;
import dev.headroom.testing.Randoms;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Memory plans as property tests over random networks and shapes, and the executor's measured peak against them. */
class PlanTest {

    /** A random upscaler-like network: residual blocks, dense blocks with concatenations, an upsampling or two. */
    static Graph randomGraph(Random r) {
        return randomGraph(r, 1 + r.nextInt(6));
    }

    static Graph randomGraph(Random r, int blocks) {
        GraphBuilder g = new GraphBuilder(3);
        int f = new int[] {4, 8, 16}[r.nextInt(3)];
        int x = g.conv("first", g.input(), 3, f, Act.NONE);
        int ups = 0;
        for (int b = 0; b < blocks; b++) {
            switch (r.nextInt(ups < 2 ? 3 : 2)) {
                case 0 -> {
                    int y = g.conv("r" + b + ".a", x, 3, f, Act.RELU);
                    y = g.conv("r" + b + ".b", y, 3, f, Act.NONE);
                    x = g.add("r" + b + ".add", g.scale("r" + b + ".s", y, 0.2f), x);
                }
                case 1 -> {
                    int cat = x, grow = 2 + r.nextInt(6);
                    for (int i = 0, k = 2 + r.nextInt(3); i < k; i++) {
                        int c = g.conv("d" + b + ".c" + i, cat, 3, grow, Act.leakyRelu(0.2f));
                        cat = g.concat("d" + b + ".cat" + i, cat, c);
                    }
                    x = g.add("d" + b + ".add", g.scale("d" + b + ".s", g.conv("d" + b + ".fuse", cat, 1, f, Act.NONE), 0.2f), x);
                }
                default -> {
                    x = g.conv("u" + b + ".conv", g.upsample("u" + b, x, 2), 3, f, Act.leakyRelu(0.2f));
                    ups++;
                }
            }
        }
        return g.build(g.conv("last", x, 3, 3, Act.NONE));
    }

    static void assertNoOverlap(MemoryPlan p) {
        List<MemoryPlan.Buffer> bs = p.buffers();
        for (int i = 0; i < bs.size(); i++) {
            for (int j = i + 1; j < bs.size(); j++) {
                MemoryPlan.Buffer a = bs.get(i), b = bs.get(j);
                boolean together = a.first() <= b.last() && b.first() <= a.last();
                boolean apart = a.offset() + a.bytes() <= b.offset() || b.offset() + b.bytes() <= a.offset();
                assertTrue(!together || apart, "buffers of nodes " + a.root() + " and " + b.root() + " are alive together and overlap");
            }
            assertTrue(bs.get(i).offset() + bs.get(i).bytes() <= p.arenaBytes());
        }
    }

    @Test
    void plansOfRandomNetworksNeverOverlapAndStayNearTheLowerBound() {
        Random r = new Random(Randoms.seed());
        double worst = 1;
        for (int trial = 0; trial < 300; trial++) {
            Graph g = randomGraph(r);
            MemoryPlan p = Planner.plan(g, 1 + r.nextInt(2), 8 + r.nextInt(60), 8 + r.nextInt(60), CpuMemoryModel.INSTANCE);
            assertNoOverlap(p);
            assertTrue(p.arenaBytes() >= p.lowerBound());
            worst = Math.max(worst, (double) p.arenaBytes() / p.lowerBound());
            assertTrue(p.arenaBytes() <= 1.05 * p.lowerBound(), "arena " + p.arenaBytes() + " vs lower bound " + p.lowerBound() + ":\n"
                    + p.buffers().stream().map(b -> g.node(b.root()).name() + " " + b).collect(java.util.stream.Collectors.joining("\n")));
        }
        System.out.printf("300 random networks: worst arena / lower bound %.4f%n", worst);
    }

    @Test
    void theCpuBackendsMeasuredPeakIsThePlannedPeak() {
        Random r = new Random(Randoms.seed());
        for (int trial = 0; trial < 25; trial++) {
            Graph g = randomGraph(r);
            int h = 8 + r.nextInt(40), w = 8 + r.nextInt(40);
            try (CpuOps ops = new CpuOps(); GraphRunner runner = new GraphRunner(g, GraphRunnerTest.randomWeights(g, r), ops)) {
                runner.run(Tensor.wrap(Randoms.floats(r, h * w * 3, 1f), 1, h, w, 3));
                MemoryPlan p = runner.plan(1, h, w);
                // the CPU's weights are plain arrays charged to the ledger without a block: the planned
                // weights are that charge, the rest is what the allocator handed out at its peak
                assertEquals(p.weights(), ops.memory().usedByCategory().get("weights"), "planned against charged weights");
                assertEquals(p.peak() - p.weights(), ops.memory().stats().allocatedPeak(), "predicted against measured peak, " + w + "x" + h);
                assertEquals(0, ops.memory().stats().allocated(), "all given back");
            }
        }
    }

    /** A deep random network of about 1,000 activation buffers: the plan is valid; its size and speed are printed for the record. */
    @Test
    void aThousandBufferNetworkPlansWithoutOverlap() {
        Random r = new Random(Randoms.seed());
        Graph g = randomGraph(r, 700);
        MemoryPlan p = null;
        long best = Long.MAX_VALUE;
        for (int rep = 0; rep < 10; rep++) {
            long t0 = System.nanoTime();
            p = Planner.plan(g, 1, 64, 64, CpuMemoryModel.INSTANCE);
            best = Math.min(best, System.nanoTime() - t0);
        }
        assertTrue(p.buffers().size() >= 900, p.buffers().size() + " buffers");
        assertNoOverlap(p);
        System.out.printf("network of %d nodes, %d buffers: planned in %.2f ms (best of 10), arena / lower bound %.4f%n", g.size(),
                p.buffers().size(), best / 1e6, (double) p.arenaBytes() / p.lowerBound());
    }

    /** Random lifetimes, not networks: the packing is still valid; its size and speed are printed for the record. */
    @Test
    void aThousandRandomBuffersPackWithoutOverlap() {
        Random r = new Random(Randoms.seed());
        int n = 1000;
        long[] sizes = new long[n];
        int[] first = new int[n], last = new int[n];
        for (int i = 0; i < n; i++) {
            sizes[i] = 512L * (1 + r.nextInt(4096));
            first[i] = r.nextInt(2000);
            last[i] = first[i] + r.nextInt(30);
        }
        long best = Long.MAX_VALUE;
        long[] off = null;
        for (int rep = 0; rep < 5; rep++) {
            long t0 = System.nanoTime();
            off = ArenaPacker.pack(sizes, first, last);
            best = Math.min(best, System.nanoTime() - t0);
        }
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++)
                if (first[i] <= last[j] && first[j] <= last[i]) assertTrue(off[i] + sizes[i] <= off[j] || off[j] + sizes[j] <= off[i], "overlap");
        long lb = ArenaPacker.lowerBound(sizes, first, last);
        System.out.printf("1,000 random buffers: packed in %.2f ms (best of 5), arena / lower bound %.3f%n", best / 1e6,
                (double) ArenaPacker.arenaBytes(sizes, off) / lb);
    }
}
