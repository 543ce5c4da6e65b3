package dev.headroom.testing;

import dev.headroom.core.MapWeights;
import dev.headroom.core.TensorData;
import dev.headroom.core.graph.Act;
import dev.headroom.core.graph.ChannelOrder;
import dev.headroom.core.graph.Graph;
import dev.headroom.core.graph.GraphBuilder;
import dev.headroom.core.graph.Node;
import dev.headroom.core.graph.Op;
import dev.headroom.models.arch.Detected;
import dev.headroom.models.arch.TorchArchitectures;
import dev.headroom.runtime.Residency;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/**
 * Small seeded models of the four upscaler families, for tests that run many jobs: RRDBNet and
 * SRVGGNetCompact from PyTorch-style state dicts through the real architecture detection, and
 * RDN- and RRDN-shaped graphs (idealo's dense blocks; RRDN's blocks of dense blocks with scaled
 * residuals) built as the Keras reader builds them. The same name and seed give the same weights.
 */
public final class SmallModels {
    private SmallModels() {}

    public static final String[] FAMILIES = {"rdn", "rrdn", "srvgg", "rrdbnet"};

    public static Residency.Source build(String family, long seed) {
        Random r = new Random(seed);
        return switch (family) {
            case "rrdbnet" -> torch(rrdbnet(r));
            case "srvgg" -> torch(srvgg(r));
            case "rdn" -> keras(rdn(false), r);
            case "rrdn" -> keras(rdn(true), r);
            default -> throw new IllegalArgumentException(family);
        };
    }

    private static Residency.Source torch(Map<String, TensorData> sd) {
        Detected d = TorchArchitectures.detect(sd);
        return new Residency.Source(d.graph(), new MapWeights(d.weights(), "small"), 1f);
    }

    /** RRDBNet x4: 2 blocks, 16 features, growth 8. */
    private static Map<String, TensorData> rrdbnet(Random r) {
        Map<String, TensorData> sd = new LinkedHashMap<>();
        int nf = 16, gc = 8;
        conv(sd, r, "conv_first", 3, nf);
        for (int b = 0; b < 2; b++)
            for (int k = 1; k <= 3; k++)
                for (int c = 1; c <= 5; c++) conv(sd, r, "body." + b + ".rdb" + k + ".conv" + c, nf + (c - 1) * gc, c == 5 ? nf : gc);
        for (String s : new String[] {"conv_body", "conv_up1", "conv_up2", "conv_hr"}) conv(sd, r, s, nf, nf);
        conv(sd, r, "conv_last", nf, 3);
        return sd;
    }

    /** SRVGGNetCompact x2: 5 body convolutions of 24 features with PReLU. */
    private static Map<String, TensorData> srvgg(Random r) {
        Map<String, TensorData> sd = new LinkedHashMap<>();
        int nf = 24, i = 0;
        conv(sd, r, "body." + i++, 3, nf);
        for (int k = 0; k < 6; k++) {
            float[] slope = new float[nf];
            java.util.Arrays.fill(slope, 0.25f);
            sd.put("body." + i + ".weight", new TensorData("body." + i + ".weight", new int[] {nf}, slope));
            i++;
            if (k < 5) conv(sd, r, "body." + i++, nf, nf);
        }
        conv(sd, r, "body." + i, nf, 12);
        return sd;
    }

    /** RDN (residual dense blocks, global fusion, pixel shuffle x2), or RRDN (blocks of dense blocks with residuals scaled by 0.2). */
    private static Graph rdn(boolean rrdn) {
        GraphBuilder g = new GraphBuilder(3);
        int g0 = 16, gr = 8, first = g.conv("F_m1", g.input(), 3, g0, Act.NONE), x = g.conv("F_0", first, 3, g0, Act.NONE);
        int[] outs = new int[3];
        for (int d = 0; d < 3; d++) {
            int in = x;
            for (int t = 0; t < (rrdn ? 2 : 1); t++) {
                int cat = x, blockIn = x;
                for (int c = 0; c < 2; c++) {
                    int f = g.conv("rdb" + d + "_" + t + "_c" + c, cat, 3, gr, Act.RELU);
                    cat = g.concat("rdb" + d + "_" + t + "_cat" + c, cat, f);
                }
                int fuse = g.conv("rdb" + d + "_" + t + "_lff", cat, 1, g0, Act.NONE);
                x = rrdn ? g.add("rdb" + d + "_" + t + "_res", g.scale("rdb" + d + "_" + t + "_beta", fuse, 0.2f), blockIn)
                        : g.add("rdb" + d + "_res", fuse, blockIn);
            }
            if (rrdn) x = g.add("rrdb" + d + "_res", g.scale("rrdb" + d + "_beta", x, 0.2f), in);
            outs[d] = x;
        }
        int gff = g.conv("GFF_1", g.concat("LRLs", outs), 1, g0, Act.NONE);
        gff = g.conv("GFF_2", gff, 3, g0, Act.NONE);
        int fdf = g.add("FDF", gff, first);
        int up = g.conv("UPN", fdf, 3, 3 * 4, Act.NONE);
        int y = g.pixelShuffle("PS", up, 2, ChannelOrder.TF);
        return g.build(g.conv("SR", y, 3, 3, Act.NONE));
    }

    private static Residency.Source keras(Graph g, Random r) {
        Map<String, TensorData> w = new LinkedHashMap<>();
        for (Node n : g.nodes()) {
            if (n.op() instanceof Op.Conv2d c) {
                float std = (float) Math.sqrt(2.0 / (c.kh() * c.kw() * c.cin())) * 0.5f;
                w.put(c.weight(), new TensorData(c.weight(), new int[] {c.kh(), c.kw(), c.cin(), c.cout()}, Randoms.floats(r, c.kh() * c.kw() * c.cin() * c.cout(), std)));
                w.put(c.bias(), new TensorData(c.bias(), new int[] {c.cout()}, Randoms.floats(r, c.cout(), 0.01f)));
            }
        }
        return new Residency.Source(g, new MapWeights(w, "small"), 1f);
    }

    /** A PyTorch-layout (cout, cin, 3, 3) kernel with Kaiming-like scale, and a small bias. */
    private static void conv(Map<String, TensorData> sd, Random r, String name, int cin, int cout) {
        float std = (float) Math.sqrt(2.0 / (9 * cin)) * 0.5f;
        sd.put(name + ".weight", new TensorData(name + ".weight", new int[] {cout, cin, 3, 3}, Randoms.floats(r, cout * cin * 9, std)));
        sd.put(name + ".bias", new TensorData(name + ".bias", new int[] {cout}, Randoms.floats(r, cout, 0.01f)));
    }
}
