package dev.headroom.testing;

import dev.headroom.core.TensorData;
import dev.headroom.core.graph.Graph;
import dev.headroom.core.graph.Node;
import dev.headroom.core.graph.Op;
import dev.headroom.models.arch.VaeArchitecture;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Seeded AutoencoderKL state dicts as files hold them: diffusers names and PyTorch shapes
 * (convolutions (O, I, kh, kw), attention projections as Linear (O, I)), and the same renamed to
 * the LDM layout (attention as 1x1 convolutions), written here independently of the loader's
 * renaming so that a test of one checks the other.
 */
public final class RandomVae {
    private RandomVae() {}

    public static Map<String, TensorData> diffusers(VaeArchitecture.Config c, long seed) {
        Random rnd = new Random(seed);
        Map<String, TensorData> sd = new LinkedHashMap<>();
        for (Graph g : new Graph[] {VaeArchitecture.decoder(c), VaeArchitecture.encoder(c)}) {
            for (Node n : g.nodes()) {
                switch (n.op()) {
                    case Op.Conv2d conv -> {
                        String stem = conv.weight().substring(0, conv.weight().length() - ".weight".length());
                        int[] shape = stem.contains(".attentions.0.to_") ? new int[] {conv.cout(), conv.cin()} : new int[] {conv.cout(), conv.cin(), conv.kh(), conv.kw()};
                        put(sd, conv.weight(), shape, rnd, (float) (1 / Math.sqrt(conv.cin() * conv.kh() * conv.kw())), 0f);
                        put(sd, conv.bias(), new int[] {conv.cout()}, rnd, 0.1f, 0f);
                    }
                    case Op.StridedConv s -> {
                        put(sd, s.weight(), new int[] {s.cout(), s.cin(), s.k(), s.k()}, rnd, (float) (1 / Math.sqrt(s.cin() * s.k() * s.k())), 0f);
                        put(sd, s.bias(), new int[] {s.cout()}, rnd, 0.1f, 0f);
                    }
                    case Op.GroupNorm gn -> {
                        int ch = g.channels(n.id());
                        put(sd, gn.weight(), new int[] {ch}, rnd, 0.2f, 1f);
                        put(sd, gn.bias(), new int[] {ch}, rnd, 0.2f, 0f);
                    }
                    default -> { }
                }
            }
        }
        return sd;
    }

    /** Writes tensors as an F32 safetensors file, the layout written out here so tests need no writer in the product. */
    public static void writeSafetensors(Map<String, TensorData> sd, java.nio.file.Path file) throws java.io.IOException {
        StringBuilder json = new StringBuilder("{");
        long off = 0;
        for (TensorData t : sd.values()) {
            if (json.length() > 1) json.append(',');
            json.append('"').append(t.name()).append("\":{\"dtype\":\"F32\",\"shape\":").append(java.util.Arrays.toString(t.shape()).replace(" ", ""))
                    .append(",\"data_offsets\":[").append(off).append(',').append(off + 4 * t.count()).append("]}");
            off += 4 * t.count();
        }
        json.append('}');
        while (json.length() % 8 != 0) json.append(' ');
        byte[] h = json.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8);
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate((int) (8 + h.length + off)).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h);
        for (TensorData t : sd.values()) for (float v : t.data()) b.putFloat(v);
        java.nio.file.Files.write(file, b.array());
    }

    /** The same map with every tensor renamed to its key (the LDM renaming keeps the old names inside). */
    public static Map<String, TensorData> named(Map<String, TensorData> sd) {
        Map<String, TensorData> out = new LinkedHashMap<>();
        sd.forEach((k, t) -> out.put(k, new TensorData(k, t.shape(), t.data())));
        return out;
    }

    private static void put(Map<String, TensorData> sd, String name, int[] shape, Random rnd, float scale, float mean) {
        int n = 1;
        for (int d : shape) n *= d;
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = mean + scale * (float) rnd.nextGaussian();
        sd.put(name, new TensorData(name, shape, v));
    }

    private static final Pattern UP = Pattern.compile("decoder\\.up_blocks\\.(\\d+)\\.(resnets\\.(\\d+)|upsamplers\\.0)\\.(.*)");
    private static final Pattern DOWN = Pattern.compile("encoder\\.down_blocks\\.(\\d+)\\.(resnets\\.(\\d+)|downsamplers\\.0)\\.(.*)");

    /** The LDM / ComfyUI layout of a diffusers state dict, under {@code prefix}. */
    public static Map<String, TensorData> ldm(Map<String, TensorData> sd, int levels, String prefix) {
        Map<String, TensorData> out = new LinkedHashMap<>();
        for (Map.Entry<String, TensorData> e : sd.entrySet()) {
            String k = e.getKey().replace("conv_shortcut", "nin_shortcut").replace(".conv_norm_out.", ".norm_out.");
            TensorData t = e.getValue();
            Matcher up = UP.matcher(k), down = DOWN.matcher(k);
            if (up.matches()) {
                int level = levels - 1 - Integer.parseInt(up.group(1));
                k = "decoder.up." + level + "." + (up.group(3) != null ? "block." + up.group(3) : "upsample") + "." + up.group(4);
            } else if (down.matches()) {
                k = "encoder.down." + down.group(1) + "." + (down.group(3) != null ? "block." + down.group(3) : "downsample") + "." + down.group(4);
            } else if (k.contains(".mid_block.resnets.")) {
                k = k.replace(".mid_block.resnets.0.", ".mid.block_1.").replace(".mid_block.resnets.1.", ".mid.block_2.");
            } else if (k.contains(".mid_block.attentions.0.")) {
                k = k.replace(".mid_block.attentions.0.group_norm.", ".mid.attn_1.norm.").replace(".mid_block.attentions.0.to_q.", ".mid.attn_1.q.")
                        .replace(".mid_block.attentions.0.to_k.", ".mid.attn_1.k.").replace(".mid_block.attentions.0.to_v.", ".mid.attn_1.v.")
                        .replace(".mid_block.attentions.0.to_out.0.", ".mid.attn_1.proj_out.");
                if (t.rank() == 2) t = new TensorData(k, new int[] {t.dim(0), t.dim(1), 1, 1}, t.data());
            }
            out.put(prefix + k, t);
        }
        return out;
    }
}
