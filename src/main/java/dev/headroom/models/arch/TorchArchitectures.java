package dev.headroom.models.arch;

import dev.headroom.core.TensorData;
import dev.headroom.core.graph.Act;
import dev.headroom.core.graph.ChannelOrder;
import dev.headroom.core.graph.Graph;
import dev.headroom.core.graph.GraphBuilder;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Recognises PyTorch super-resolution state dicts by their key names and tensor shapes, as spandrel
 * does, and builds their graphs:
 * <ul>
 *   <li>RRDBNet (ESRGAN, Real-ESRGAN x4plus, x2plus with pixel-unshuffle, anime 6B), in BasicSR's
 *       key style ({@code conv_first}, {@code body.N.rdbK.convJ}) or the original ESRGAN's
 *       ({@code model.0}, {@code model.1.sub.N.RDBK.convJ.0}), which is renamed to BasicSR's first;</li>
 *   <li>SRVGGNetCompact (Real-ESRGAN compact / animevideo): {@code body.N} convolutions with PReLU.</li>
 * </ul>
 * Kernels are transposed from (cout, cin, kh, kw) to (kh, kw, cin, cout) here.
 */
public final class TorchArchitectures {
    private TorchArchitectures() {}

    private static final Pattern OLD_RDB = Pattern.compile("model\\.1\\.sub\\.(\\d+)\\.RDB(\\d)\\.conv(\\d)\\.0\\.(weight|bias)");
    private static final Pattern OLD_TRUNK = Pattern.compile("model\\.1\\.sub\\.(\\d+)\\.(weight|bias)");
    private static final Pattern BODY = Pattern.compile("body\\.(\\d+)\\.(weight|bias)");

    /**
     * Refuses, from the names alone and before any tensor's data is read, a state dict that none
     * of the families below could be: the same tests as {@link #detect}, without shapes.
     */
    public static void requireKnown(java.util.Set<String> names) {
        boolean known = names.contains("model.0.weight") && names.stream().anyMatch(k -> k.startsWith("model.1.sub."))
                || names.contains("conv_first.weight") && names.contains("body.0.rdb1.conv1.weight")
                || names.contains("body.0.weight");
        if (!known) throw new UnsupportedArchitecture(unknown(names));
    }

    private static String unknown(java.util.Set<String> names) {
        String sample = String.join(", ", names.stream().limit(4).map(k -> k.length() > 80 ? k.substring(0, 80) + "..." : k).toList());
        return "unknown architecture: keys (" + sample + ", ...) match none of RRDBNet, "
                + "SRVGGNetCompact (PyTorch) or RDN, RRDN (Keras)";
    }

    public static Detected detect(Map<String, TensorData> sd) {
        if (sd.containsKey("model.0.weight") && sd.keySet().stream().anyMatch(k -> k.startsWith("model.1.sub."))) {
            return rrdb(transpose(renameOldEsrgan(sd)), "ESRGAN (original key style)");
        }
        if (sd.containsKey("conv_first.weight") && sd.containsKey("body.0.rdb1.conv1.weight")) {
            return rrdb(transpose(sd), "BasicSR key style");
        }
        if (sd.containsKey("body.0.weight") && sd.get("body.0.weight").rank() == 4) {
            return srvgg(transpose(sd));
        }
        throw new UnsupportedArchitecture(unknown(sd.keySet()));
    }

    /** original ESRGAN names to BasicSR's */
    static Map<String, TensorData> renameOldEsrgan(Map<String, TensorData> sd) {
        int nb = 0;
        for (String k : sd.keySet()) {
            Matcher m = OLD_RDB.matcher(k);
            if (m.matches()) nb = Math.max(nb, Integer.parseInt(m.group(1)) + 1);
        }
        Map<String, String> fixed = Map.of("model.0", "conv_first", "model.1.sub." + nb, "conv_body", "model.3", "conv_up1",
                "model.6", "conv_up2", "model.8", "conv_hr", "model.10", "conv_last");
        Map<String, TensorData> out = new LinkedHashMap<>();
        for (Map.Entry<String, TensorData> e : sd.entrySet()) {
            String k = e.getKey();
            Matcher m = OLD_RDB.matcher(k);
            String nk;
            if (m.matches()) {
                nk = "body." + m.group(1) + ".rdb" + m.group(2) + ".conv" + m.group(3) + "." + m.group(4);
            } else {
                String stem = k.substring(0, k.lastIndexOf('.'));
                String param = k.substring(k.lastIndexOf('.') + 1);
                String to = fixed.get(stem);
                if (to == null) {
                    throw new UnsupportedArchitecture("ESRGAN-style key '" + k + "' is not part of a x4 RRDBNet (x8 and other variants are not supported)");
                }
                nk = to + "." + param;
            }
            out.put(nk, e.getValue().renamed(nk));
        }
        return out;
    }

    private static Map<String, TensorData> transpose(Map<String, TensorData> sd) {
        Map<String, TensorData> out = new LinkedHashMap<>();
        sd.forEach((k, v) -> out.put(k, v.rank() == 4 ? v.oihwToHwio() : v));
        return out;
    }

    private static Detected rrdb(Map<String, TensorData> w, String style) {
        TensorData first = w.get("conv_first.weight");
        int inCh = first.dim(2), nf = first.dim(3);
        int gc = w.get("body.0.rdb1.conv1.weight").dim(3);
        TreeSet<Integer> blocks = new TreeSet<>();
        for (String k : w.keySet()) {
            if (k.startsWith("body.")) blocks.add(Integer.parseInt(k.split("\\.")[1]));
        }
        int nb = blocks.size();
        int outCh = w.get("conv_last.weight").dim(3);
        // Real-ESRGAN x2plus and x1 fold the image into channels first
        int scale, unshuffle;
        if (inCh == outCh) { scale = 4; unshuffle = 1; }
        else if (inCh == outCh * 4) { scale = 2; unshuffle = 2; }
        else if (inCh == outCh * 16) { scale = 1; unshuffle = 4; }
        else throw new UnsupportedArchitecture("RRDBNet conv_first takes " + inCh + " channels for " + outCh + " output channels; expected 1, 4 or 16 times");
        int imgCh = inCh / (unshuffle * unshuffle);
        GraphBuilder g = new GraphBuilder(imgCh);
        Act lrelu = Act.leakyRelu(0.2f);
        int x = g.input();
        if (unshuffle > 1) x = g.pixelUnshuffle("pixel_unshuffle", x, unshuffle, ChannelOrder.TORCH);
        int fea = g.conv("conv_first", x, 3, nf, Act.NONE);
        int trunk = fea;
        for (int b = 0; b < nb; b++) {
            int blockIn = trunk;
            int y = blockIn;
            for (int r = 1; r <= 3; r++) y = rdb(g, "body." + b + ".rdb" + r, y, nf, gc, lrelu);
            trunk = g.add("body." + b + ".out", g.scale("body." + b + ".beta", y, 0.2f), blockIn);
        }
        int body = g.conv("conv_body", trunk, 3, nf, Act.NONE);
        int feat = g.add("trunk_residual", fea, body);
        feat = g.conv("conv_up1", g.upsample("up1", feat, 2), 3, nf, lrelu);
        feat = g.conv("conv_up2", g.upsample("up2", feat, 2), 3, nf, lrelu);
        int hr = g.conv("conv_hr", feat, 3, nf, lrelu);
        int out = g.conv("conv_last", hr, 3, outCh, Act.NONE);
        Graph graph = g.build(out);
        String variant = (nb == 23 && nf == 64 ? "" : nb == 6 ? "anime 6B, " : "") + "x" + scale;
        return new Detected("RRDBNet", variant + " (" + style + "; " + nb + " blocks, " + nf + " features, growth " + gc + ")", graph, w);
    }

    private static int rdb(GraphBuilder g, String p, int x, int nf, int gc, Act lrelu) {
        int cat = x;
        for (int i = 1; i <= 4; i++) {
            int xi = g.conv(p + ".conv" + i, cat, 3, gc, lrelu);
            cat = g.concat(p + ".cat" + i, cat, xi);
        }
        int x5 = g.conv(p + ".conv5", cat, 3, nf, Act.NONE);
        return g.add(p + ".out", g.scale(p + ".beta", x5, 0.2f), x);
    }

    private static Detected srvgg(Map<String, TensorData> w) {
        TreeSet<Integer> idx = new TreeSet<>();
        for (String k : w.keySet()) {
            Matcher m = BODY.matcher(k);
            if (!m.matches()) throw new UnsupportedArchitecture("key '" + k + "' is not part of SRVGGNetCompact");
            idx.add(Integer.parseInt(m.group(1)));
        }
        int inCh = w.get("body.0.weight").dim(2);
        GraphBuilder g = new GraphBuilder(inCh);
        int x = g.input();
        int convs = 0, last = -1;
        for (int i : idx) {
            TensorData t = w.get("body." + i + ".weight");
            if (t.rank() == 4) {
                x = g.conv("body." + i, x, t.dim(0), t.dim(3), Act.NONE);
                convs++;
                last = i;
            } else if (t.rank() == 1) {
                x = g.act("body." + i, x, Act.prelu("body." + i + ".weight"));
            }
        }
        int outFeat = w.get("body." + last + ".weight").dim(3);
        int r = (int) Math.round(Math.sqrt(outFeat / (double) inCh));
        if (r * r * inCh != outFeat) throw new UnsupportedArchitecture("SRVGG last conv has " + outFeat + " outputs, not " + inCh + " times a square");
        int shuffled = g.pixelShuffle("pixel_shuffle", x, r, ChannelOrder.TORCH);
        int base = g.upsample("base", g.input(), r);
        int out = g.add("residual", shuffled, base);
        int feat = w.get("body.0.weight").dim(3);
        return new Detected("SRVGGNetCompact", "x" + r + " (" + (convs - 2) + " body convs, " + feat + " features, PReLU)", g.build(out), w);
    }
}
