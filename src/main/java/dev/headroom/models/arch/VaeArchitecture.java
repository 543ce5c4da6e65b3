package dev.headroom.models.arch;

import dev.headroom.core.TensorData;
import dev.headroom.core.graph.Act;
import dev.headroom.core.graph.Graph;
import dev.headroom.core.graph.GraphBuilder;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * AutoencoderKL, the VAE of SD 1.x, SDXL, SD3 and FLUX, recognised from key names and shapes and
 * built as diffusers builds it: the decoder is conv_in; a mid block of resnet, single-head
 * attention, resnet; one up block per level of {@code layers + 1} resnets, each but the last
 * followed by a nearest 2x upsample and a 3x3 convolution; GroupNorm + SiLU and conv_out (with
 * {@code post_quant_conv} first where the file has one). The encoder mirrors it with
 * {@code layers} resnets per level and stride-2 convolutions padded right and bottom. Every
 * GroupNorm has 32 groups and eps 1e-6; a resnet is {@code conv2(silu(norm2(conv1(silu(norm1(x)))))) + shortcut(x)}.
 *
 * <p>Key layouts: diffusers ({@code decoder.up_blocks.0.resnets.0.norm1.weight}, also with the older
 * attention names query/key/value/proj_attn; attention as
 * Linear layers), and the original LDM layout of single-file SD/SDXL/SD3 checkpoints, ComfyUI and
 * FLUX's ae.safetensors ({@code decoder.up.3.block.0.norm1.weight}, up levels numbered from the
 * output, attention as 1x1 convolutions), either under any prefix ({@code first_stage_model.},
 * {@code vae.}). LDM names are renamed to diffusers' (the inverse of diffusers' ldm_vae
 * conversion); the graph uses diffusers' names. Kernels become HWIO here.
 */
public final class VaeArchitecture {
    private VaeArchitecture() {}

    public static final int GROUPS = 32;
    public static final float EPS = 1e-6f;

    /** What a VAE was trained with: latents are {@code (z - shift) * scaling}. */
    public enum Family {
        SD1("SD 1.x", 0.18215f, 0f), SDXL("SDXL", 0.13025f, 0f), SD3("SD3", 1.5305f, 0.0609f), FLUX("FLUX", 0.3611f, 0.1159f);

        public final String label;
        public final float scaling, shift;

        Family(String label, float scaling, float shift) {
            this.label = label;
            this.scaling = scaling;
            this.shift = shift;
        }
    }

    /** The shape of one AutoencoderKL: block channels from the image side, resnets per encoder level, latent channels. */
    public record Config(int[] channels, int layers, int latent, boolean quantConv, boolean postQuantConv, boolean hasEncoder, boolean hasDecoder) {
        public int scale() {
            return 1 << (channels.length - 1);
        }

        @Override
        public String toString() {
            return latent + " latent channels, block channels " + java.util.Arrays.toString(channels) + ", " + layers + " resnets per level"
                    + (quantConv || postQuantConv ? ", quant convs" : "") + (hasEncoder && hasDecoder ? ", encoder and decoder" : hasDecoder ? ", decoder only" : ", encoder only");
        }
    }

    /** A recognised VAE: the layout its keys were in, the prefix they sat under, its shape, graphs (null where absent) and weights by diffusers name. */
    public record Detected(String layout, String prefix, Config config, Graph decoder, Graph encoder, Map<String, TensorData> weights) {}

    /** Keys an AutoencoderKL has, under any prefix; text encoders' {@code encoder.layers} and UNet keys are not among them. */
    private static final Pattern VAE_KEY = Pattern.compile(
            "(.*?)((?:encoder|decoder)\\.(?:conv_in|conv_out|norm_out|conv_norm_out|mid|mid_block|up|down|up_blocks|down_blocks)\\..*|(?:post_)?quant_conv\\.(?:weight|bias))");

    /** Whether a checkpoint key may belong to a VAE; a reader uses it to skip the rest of a whole checkpoint. */
    public static boolean isVaeKey(String key) {
        return VAE_KEY.matcher(key).matches();
    }

    /** Hints at the family from the other keys of a whole checkpoint, gathered while a reader filters. */
    public static final class Hints implements Predicate<String> {
        private boolean sdxl, sd1, sd3;

        @Override
        public boolean test(String key) {
            if (key.startsWith("conditioner.embedders.")) sdxl = true;
            else if (key.startsWith("cond_stage_model.")) sd1 = true;
            else if (key.contains("joint_blocks.")) sd3 = true;
            return isVaeKey(key);
        }

        /** The family a VAE of {@code latent} channels most likely is, given these hints. */
        public Family family(int latent) {
            if (latent == 16) return sd3 ? Family.SD3 : Family.FLUX;
            return sd1 && !sdxl ? Family.SD1 : Family.SDXL;
        }
    }

    /** The prefix under which {@code keys} hold a VAE (its decoder's or encoder's conv_in), or null. */
    public static String prefix(Set<String> keys) {
        String best = null;
        for (String k : keys) {
            for (String tail : new String[] {"decoder.conv_in.weight", "encoder.conv_in.weight"}) {
                if (k.endsWith(tail)) {
                    String p = k.substring(0, k.length() - tail.length());
                    if (p.isEmpty() || p.endsWith(".")) {
                        if (best == null || p.length() < best.length()) best = p;
                    }
                }
            }
        }
        return best;
    }

    /** Recognises the VAE in {@code sd} (which may hold other keys too) and builds its graphs. */
    public static Detected detect(Map<String, TensorData> sd) {
        String prefix = prefix(sd.keySet());
        if (prefix == null) {
            throw new UnsupportedArchitecture("no VAE in this file: no decoder.conv_in.weight or encoder.conv_in.weight under any prefix");
        }
        Map<String, TensorData> own = new LinkedHashMap<>();
        for (Map.Entry<String, TensorData> e : sd.entrySet()) {
            if (e.getKey().startsWith(prefix) && isVaeKey(e.getKey().substring(prefix.length()))) own.put(e.getKey().substring(prefix.length()), e.getValue());
        }
        boolean ldm = own.keySet().stream().anyMatch(k -> k.startsWith("decoder.mid.") || k.startsWith("encoder.mid."));
        Map<String, TensorData> named = ldm ? fromLdm(own) : deprecatedAttention(own);
        Config config = config(named);
        Map<String, TensorData> weights = new LinkedHashMap<>();
        for (Map.Entry<String, TensorData> e : named.entrySet()) weights.put(e.getKey(), toGraphLayout(e.getKey(), e.getValue()));
        Graph decoder = config.hasDecoder() ? decoder(config) : null;
        Graph encoder = config.hasEncoder() ? encoder(config) : null;
        return new Detected(ldm ? "LDM" : "diffusers", prefix, config, decoder, encoder, weights);
    }

    /** Conv kernels (O,I,kh,kw) and Linear weights (O,I) to HWIO; vectors as they are. */
    private static TensorData toGraphLayout(String name, TensorData t) {
        if (t.rank() == 4) return t.oihwToHwio();
        if (t.rank() == 2) return new TensorData(name, new int[] {t.dim(0), t.dim(1), 1, 1}, t.data()).oihwToHwio();
        return t;
    }

    private static final Pattern LDM_UP = Pattern.compile("decoder\\.up\\.(\\d+)\\.(block\\.(\\d+)|upsample)\\.(.*)");
    private static final Pattern LDM_DOWN = Pattern.compile("encoder\\.down\\.(\\d+)\\.(block\\.(\\d+)|downsample)\\.(.*)");
    private static final Pattern LDM_MID = Pattern.compile("(encoder|decoder)\\.mid\\.(block_(\\d)|attn_1)\\.(.*)");
    private static final Map<String, String> LDM_ATTN = Map.of("norm", "group_norm", "q", "to_q", "k", "to_k", "v", "to_v", "proj_out", "to_out.0");

    /** LDM (and FLUX ae) names to diffusers'. */
    static Map<String, TensorData> fromLdm(Map<String, TensorData> sd) {
        int levels = 0;
        for (String k : sd.keySet()) {
            Matcher m = LDM_UP.matcher(k);
            if (m.matches()) levels = Math.max(levels, Integer.parseInt(m.group(1)) + 1);
        }
        Map<String, TensorData> out = new LinkedHashMap<>();
        for (Map.Entry<String, TensorData> e : sd.entrySet()) {
            String k = e.getKey(), n = k;
            Matcher up = LDM_UP.matcher(k), down = LDM_DOWN.matcher(k), mid = LDM_MID.matcher(k);
            if (up.matches()) {
                int i = levels - 1 - Integer.parseInt(up.group(1));
                n = "decoder.up_blocks." + i + (up.group(3) != null ? ".resnets." + up.group(3) + "." + shortcut(up.group(4)) : ".upsamplers.0." + up.group(4));
            } else if (down.matches()) {
                n = "encoder.down_blocks." + down.group(1)
                        + (down.group(3) != null ? ".resnets." + down.group(3) + "." + shortcut(down.group(4)) : ".downsamplers.0." + down.group(4));
            } else if (mid.matches()) {
                if (mid.group(3) != null) {
                    n = mid.group(1) + ".mid_block.resnets." + (Integer.parseInt(mid.group(3)) - 1) + "." + shortcut(mid.group(4));
                } else {
                    String rest = mid.group(4);
                    int dot = rest.indexOf('.');
                    String mapped = LDM_ATTN.get(rest.substring(0, dot));
                    n = mapped == null ? k : mid.group(1) + ".mid_block.attentions.0." + mapped + rest.substring(dot);
                }
            } else if (k.matches("(encoder|decoder)\\.norm_out\\..*")) {
                n = k.replaceFirst("\\.norm_out\\.", ".conv_norm_out.");
            }
            out.put(n, e.getValue());
        }
        return out;
    }

    private static final Pattern OLD_ATTN = Pattern.compile("((?:encoder|decoder)\\.mid_block\\.attentions\\.0\\.)(query|key|value|proj_attn)(\\..*)");
    private static final Map<String, String> OLD_ATTN_NAMES = Map.of("query", "to_q", "key", "to_k", "value", "to_v", "proj_attn", "to_out.0");

    /**
     * diffusers' older attention names (query, key, value, proj_attn, before diffusers 0.14; still in
     * many VAE uploads) to the current ones, as diffusers converts them on loading.
     */
    static Map<String, TensorData> deprecatedAttention(Map<String, TensorData> sd) {
        Map<String, TensorData> out = new LinkedHashMap<>();
        for (Map.Entry<String, TensorData> e : sd.entrySet()) {
            Matcher m = OLD_ATTN.matcher(e.getKey());
            out.put(m.matches() ? m.group(1) + OLD_ATTN_NAMES.get(m.group(2)) + m.group(3) : e.getKey(), e.getValue());
        }
        return out;
    }

    private static String shortcut(String rest) {
        return rest.startsWith("nin_shortcut.") ? "conv_shortcut." + rest.substring("nin_shortcut.".length()) : rest;
    }

    private static final Pattern BLOCK = Pattern.compile("(encoder\\.down_blocks|decoder\\.up_blocks)\\.(\\d+)\\.resnets\\.(\\d+)\\.conv2\\.weight");

    /** Block channels, resnets per level and latent channels from the (diffusers-named) shapes. */
    static Config config(Map<String, TensorData> sd) {
        Map<Integer, Integer> enc = new java.util.TreeMap<>(), dec = new java.util.TreeMap<>();
        Map<Integer, Set<Integer>> encRes = new java.util.TreeMap<>(), decRes = new java.util.TreeMap<>();
        for (Map.Entry<String, TensorData> e : sd.entrySet()) {
            Matcher m = BLOCK.matcher(e.getKey());
            if (!m.matches()) continue;
            boolean isEnc = m.group(1).startsWith("encoder");
            int level = Integer.parseInt(m.group(2)), j = Integer.parseInt(m.group(3));
            (isEnc ? enc : dec).put(level, e.getValue().dim(0));
            (isEnc ? encRes : decRes).computeIfAbsent(level, x -> new TreeSet<>()).add(j);
        }
        boolean hasDec = sd.containsKey("decoder.conv_in.weight"), hasEnc = sd.containsKey("encoder.conv_in.weight");
        int[] channels;
        int layers, latent;
        if (hasDec) {
            if (dec.isEmpty()) throw new UnsupportedArchitecture("VAE decoder without up blocks (no decoder.up_blocks.N.resnets.M.conv2.weight)");
            int levels = dec.size();
            channels = new int[levels];
            for (int i = 0; i < levels; i++) channels[levels - 1 - i] = require(dec, i, "decoder up block");
            layers = decRes.get(0).size() - 1;
            latent = sd.get("decoder.conv_in.weight").dim(1);
        } else {
            if (enc.isEmpty()) throw new UnsupportedArchitecture("VAE encoder without down blocks (no encoder.down_blocks.N.resnets.M.conv2.weight)");
            channels = new int[enc.size()];
            for (int i = 0; i < channels.length; i++) channels[i] = require(enc, i, "encoder down block");
            layers = encRes.get(0).size();
            latent = sd.get("encoder.conv_out.weight").dim(0) / 2;
        }
        for (int c : channels) {
            if (c % GROUPS != 0) throw new UnsupportedArchitecture("VAE block with " + c + " channels: not a multiple of GroupNorm's " + GROUPS + " groups");
        }
        if (layers < 1) throw new UnsupportedArchitecture("VAE with " + layers + " resnets per level");
        return new Config(channels, layers, latent, sd.containsKey("quant_conv.weight"), sd.containsKey("post_quant_conv.weight"), hasEnc, hasDec);
    }

    private static int require(Map<Integer, Integer> m, int level, String what) {
        Integer c = m.get(level);
        if (c == null) throw new UnsupportedArchitecture("VAE " + what + " " + level + " is missing");
        return c;
    }

    /** Latent (N,h,w,latent) to image (N,h*scale,w*scale,3) in [-1, 1]: the decoder as diffusers runs it, after post_quant_conv. */
    public static Graph decoder(Config c) {
        return decoder(c, true);
    }

    /** The decoder with its sums and activations fused into convolutions (as it runs), or as built (for tests of the fusion). */
    public static Graph decoder(Config c, boolean fused) {
        GraphBuilder g = new GraphBuilder(c.latent());
        int x = g.input();
        if (c.postQuantConv()) x = g.conv("post_quant_conv", x, 1, c.latent(), Act.NONE);
        int levels = c.channels().length;
        x = g.conv("decoder.conv_in", x, 3, c.channels()[levels - 1], Act.NONE);
        x = mid(g, "decoder.mid_block", x);
        for (int i = 0; i < levels; i++) {
            int ch = c.channels()[levels - 1 - i];
            for (int j = 0; j <= c.layers(); j++) x = resnet(g, "decoder.up_blocks." + i + ".resnets." + j, x, ch);
            if (i < levels - 1) {
                x = g.upsample("decoder.up_blocks." + i + ".upsample", x, 2);
                x = g.conv("decoder.up_blocks." + i + ".upsamplers.0.conv", x, 3, ch, Act.NONE);
            }
        }
        x = g.groupNorm("decoder.conv_norm_out", x, GROUPS, EPS, true);
        x = g.conv("decoder.conv_out", x, 3, 3, Act.NONE);
        return fused ? g.build(x) : g.buildUnfused(x);
    }

    /** Image (N,H,W,3) in [-1, 1] to moments (N,H/scale,W/scale,2*latent): mean, then log-variance. */
    public static Graph encoder(Config c) {
        return encoder(c, true);
    }

    /** The encoder fused (as it runs) or as built (for tests of the fusion). */
    public static Graph encoder(Config c, boolean fused) {
        GraphBuilder g = new GraphBuilder(3);
        int levels = c.channels().length;
        int x = g.conv("encoder.conv_in", g.input(), 3, c.channels()[0], Act.NONE);
        for (int i = 0; i < levels; i++) {
            for (int j = 0; j < c.layers(); j++) x = resnet(g, "encoder.down_blocks." + i + ".resnets." + j, x, c.channels()[i]);
            if (i < levels - 1) x = g.stridedConv("encoder.down_blocks." + i + ".downsamplers.0.conv", x, 3, c.channels()[i], 2, 0, 1, 0, 1);
        }
        x = mid(g, "encoder.mid_block", x);
        x = g.groupNorm("encoder.conv_norm_out", x, GROUPS, EPS, true);
        x = g.conv("encoder.conv_out", x, 3, 2 * c.latent(), Act.NONE);
        if (c.quantConv()) x = g.conv("quant_conv", x, 1, 2 * c.latent(), Act.NONE);
        return fused ? g.build(x) : g.buildUnfused(x);
    }

    private static int mid(GraphBuilder g, String name, int x) {
        int ch = g.channels(x);
        x = resnet(g, name + ".resnets.0", x, ch);
        x = attention(g, name + ".attentions.0", x);
        return resnet(g, name + ".resnets.1", x, ch);
    }

    /**
     * The shortcut runs first: then norm1 is its input's last reader and normalises it in place
     * ({@link dev.headroom.core.graph.ConcatPlan}), so a resnet that changes channels never holds
     * x, norm1(x) and the shortcut at once (at 1024x1024, 256 MiB less arena). conv2 still takes
     * the sum as its residual (fusion prefers the later of two convolutions).
     */
    private static int resnet(GraphBuilder g, String name, int x, int cout) {
        int shortcut = g.channels(x) == cout ? x : g.conv(name + ".conv_shortcut", x, 1, cout, Act.NONE);
        int h = g.groupNorm(name + ".norm1", x, GROUPS, EPS, true);
        h = g.conv(name + ".conv1", h, 3, cout, Act.NONE);
        h = g.groupNorm(name + ".norm2", h, GROUPS, EPS, true);
        h = g.conv(name + ".conv2", h, 3, cout, Act.NONE);
        return g.add(name + ".sum", shortcut, h);
    }

    private static int attention(GraphBuilder g, String name, int x) {
        int ch = g.channels(x);
        int h = g.groupNorm(name + ".group_norm", x, GROUPS, EPS, false);
        int q = g.conv(name + ".to_q", h, 1, ch, Act.NONE);
        int k = g.conv(name + ".to_k", h, 1, ch, Act.NONE);
        int v = g.conv(name + ".to_v", h, 1, ch, Act.NONE);
        int a = g.attention(name + ".attention", q, k, v, (float) (1 / Math.sqrt(ch)));
        int o = g.conv(name + ".to_out.0", a, 1, ch, Act.NONE);
        return g.add(name + ".sum", x, o);
    }
}
