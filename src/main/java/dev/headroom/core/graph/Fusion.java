package dev.headroom.core.graph;

import java.util.ArrayList;
import java.util.List;

/** Graph rewrites that change no result: an activation whose only input is a convolution joins its epilogue. */
final class Fusion {
    private Fusion() {}

    static Graph fuseActivations(Graph g) {
        List<List<Integer>> consumers = g.consumers();
        int n = g.size();
        int[] remap = new int[n];          // old id -> new id
        boolean[] fusedAway = new boolean[n];
        Op[] ops = new Op[n];
        for (Node node : g.nodes()) ops[node.id()] = node.op();
        for (Node node : g.nodes()) {
            if (node.op() instanceof Op.Activation a && a.act().kind() != Act.Kind.NONE) {
                int src = node.input(0);
                if (ops[src] instanceof Op.Conv2d c && c.act().kind() == Act.Kind.NONE
                        && consumers.get(src).size() == 1 && src != g.output()) {
                    ops[src] = new Op.Conv2d(c.weight(), c.bias(), c.kh(), c.kw(), c.cin(), c.cout(), c.padding(), a.act());
                    fusedAway[node.id()] = true;
                }
            }
        }
        List<Node> out = new ArrayList<>();
        int[] channels = new int[n];
        for (Node node : g.nodes()) {
            int id = node.id();
            if (fusedAway[id]) {
                remap[id] = remap[node.input(0)];
                continue;
            }
            int[] ins = node.inputs();
            for (int i = 0; i < ins.length; i++) ins[i] = remap[ins[i]];
            remap[id] = out.size();
            channels[out.size()] = g.channels(id);
            out.add(new Node(out.size(), ops[id], ins, node.name()));
        }
        int[] ch = java.util.Arrays.copyOf(channels, out.size());
        return new Graph(out, ch, remap[g.output()]);
    }
}
