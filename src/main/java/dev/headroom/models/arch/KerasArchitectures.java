package dev.headroom.models.arch;

import dev.headroom.core.TensorData;
import java.util.Map;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Names the family of a Keras super-resolution model from its layer names, as idealo's
 * image-super-resolution (and UpscalerJS's ports of it) call them:
 * RDN has {@code F_m1}, {@code F_d_c}, {@code LFF_d}, {@code GFF_1}; RRDN has
 * {@code Pre_blocks_conv}, {@code F_t_d_c}, {@code LFF_t_d}. The hyper-parameters (C convs per
 * dense block, D blocks, T RRDBs, growth G, features G0) are read off the names and shapes.
 */
public final class KerasArchitectures {
    private KerasArchitectures() {}

    private static final Pattern RDN_CONV = Pattern.compile("F_(\\d+)_(\\d+)/kernel");
    private static final Pattern RRDN_CONV = Pattern.compile("F_(\\d+)_(\\d+)_(\\d+)/kernel");

    /** "RDN" or "RRDN" with details, or null when the names match neither. */
    public static String[] identify(Map<String, TensorData> w) {
        if (w.containsKey("F_m1/kernel") && w.containsKey("GFF_1/kernel")) {
            TreeSet<Integer> d = new TreeSet<>(), c = new TreeSet<>();
            for (String k : w.keySet()) {
                Matcher m = RDN_CONV.matcher(k);
                if (m.matches()) {
                    d.add(Integer.parseInt(m.group(1)));
                    c.add(Integer.parseInt(m.group(2)));
                }
            }
            int g = w.get("F_1_1/kernel").dim(-1), g0 = w.get("F_0/kernel").dim(-1);
            return new String[] {"RDN", "C=" + c.size() + " D=" + d.size() + " G=" + g + " G0=" + g0};
        }
        if (w.containsKey("Pre_blocks_conv/kernel")) {
            TreeSet<Integer> t = new TreeSet<>(), d = new TreeSet<>(), c = new TreeSet<>();
            for (String k : w.keySet()) {
                Matcher m = RRDN_CONV.matcher(k);
                if (m.matches()) {
                    t.add(Integer.parseInt(m.group(1)));
                    d.add(Integer.parseInt(m.group(2)));
                    c.add(Integer.parseInt(m.group(3)));
                }
            }
            int g = w.get("F_1_1_1/kernel").dim(-1), g0 = w.get("Pre_blocks_conv/kernel").dim(-1);
            return new String[] {"RRDN", "C=" + c.size() + " D=" + d.size() + " T=" + t.size() + " G=" + g + " G0=" + g0};
        }
        return null;
    }
}
