package dev.headroom.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.headroom.core.MapWeights;
import dev.headroom.core.TensorData;
import dev.headroom.core.graph.Act;
import dev.headroom.core.graph.Graph;
import dev.headroom.core.graph.GraphBuilder;
import dev.headroom.core.graph.Node;
import dev.headroom.core.graph.Op;
import dev.headroom.runtime.cpu.CpuOps;
import dev.headroom.testing.Randoms;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The layer-tiled runner on graphs that are not VAEs: every op it runs in bands or on demand, and
 * outputs of every kind (a convolution, a sum, a GroupNorm, an activation, an upsample), against
 * the whole-tensor run on the CPU, bit for bit, for random band heights.
 */
class LayerTiledRunnerTest {
    private final Random rnd = new Random(Randoms.seed());

    private Graph graph(int outputKind) {
        GraphBuilder g = new GraphBuilder(3);
        int x = g.conv("c0", g.input(), 3, 8, Act.NONE);
        int n = g.groupNorm("n0", x, 4, 1e-6f, true);
        int d = g.stridedConv("down", n, 3, 8, 2, 0, 1, 0, 1);
        int u = g.upsample("up", d, 2);
        int c = g.conv("c1", u, 3, 8, Act.NONE);
        int s = g.add("sum", c, x);
        int out = switch (outputKind) {
            case 0 -> g.conv("c2", s, 5, 3, Act.NONE);
            case 1 -> s;
            case 2 -> g.groupNorm("n1", s, 2, 1e-5f, false);
            case 3 -> g.act("silu", g.scale("half", s, 0.5f), Act.SILU);
            default -> g.upsample("up2", g.conv("c3", s, 1, 4, Act.NONE), 2);
        };
        return g.build(out);
    }

    private MapWeights weights(Graph g) {
        Map<String, TensorData> w = new HashMap<>();
        for (Node n : g.nodes()) {
            switch (n.op()) {
                case Op.Conv2d c -> {
                    w.put(c.weight(), new TensorData(c.weight(), new int[] {c.kh(), c.kw(), c.cin(), c.cout()}, Randoms.floats(rnd, c.kh() * c.kw() * c.cin() * c.cout(), 0.3f)));
                    w.put(c.bias(), new TensorData(c.bias(), new int[] {c.cout()}, Randoms.floats(rnd, c.cout(), 0.1f)));
                }
                case Op.StridedConv c -> {
                    w.put(c.weight(), new TensorData(c.weight(), new int[] {c.k(), c.k(), c.cin(), c.cout()}, Randoms.floats(rnd, c.k() * c.k() * c.cin() * c.cout(), 0.3f)));
                    w.put(c.bias(), new TensorData(c.bias(), new int[] {c.cout()}, Randoms.floats(rnd, c.cout(), 0.1f)));
                }
                case Op.GroupNorm gn -> {
                    int ch = g.channels(n.id());
                    w.put(gn.weight(), new TensorData(gn.weight(), new int[] {ch}, Randoms.floats(rnd, ch, 1f)));
                    w.put(gn.bias(), new TensorData(gn.bias(), new int[] {ch}, Randoms.floats(rnd, ch, 1f)));
                }
                default -> { }
            }
        }
        return new MapWeights(w, "random");
    }

    @Test
    void everyOutputKindInBandsEqualsTheWholeRun() {
        try (CpuOps ops = new CpuOps()) {
            for (int kind = 0; kind < 5; kind++) {
                Graph g = graph(kind);
                int h = 2 * (2 + rnd.nextInt(8)), w = 2 * (2 + rnd.nextInt(8));
                Tensor in = Tensor.wrap(Randoms.floats(rnd, h * w * 3, 1f), 1, h, w, 3);
                try (GraphRunner runner = new GraphRunner(g, weights(g), ops)) {
                    float[] whole = runner.run(in).toArray();
                    int outH = g.heights(h)[g.output()];
                    for (int rows : new int[] {1, 2 + rnd.nextInt(outH), outH}) {
                        assertArrayEquals(whole, new LayerTiledRunner(runner).run(in, rows).toArray(), "output kind " + kind + ", " + h + "x" + w + ", " + rows + "-row bands");
                    }
                }
            }
        }
    }
}
