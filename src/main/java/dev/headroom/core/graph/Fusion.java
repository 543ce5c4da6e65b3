package dev.headroom.core.graph;

import java.util.ArrayList;
import java.util.List;

/**
 * Graph rewrites that change no result: an activation whose only input is a convolution joins its
 * epilogue; then a convolution whose only reader is a scale whose only reader is a two-input add
 * (or whose only reader is such an add) becomes one convolution with a scaled residual input;
 * then the same once more around a convolution that has a residual: an outer residual (RRDB's sum
 * around its last dense block, whose own sum is already in the convolution).
 */
final class Fusion {
    private Fusion() {}

    static Graph fuse(Graph g) {
        return fuseOuterResiduals(fuseResiduals(fuseActivations(g)));
    }

    static Graph fuseActivations(Graph g) {
        List<List<Integer>> consumers = g.consumers();
        int n = g.size();
        boolean[] fusedAway = new boolean[n];
        Op[] ops = new Op[n];
        for (Node node : g.nodes()) ops[node.id()] = node.op();
        for (Node node : g.nodes()) {
            // SiLU stays a node of its own: the convolution epilogues (cuDNN's fused graphs, the CPU's vector epilogue) do not have it
            if (node.op() instanceof Op.Activation a && a.act().kind() != Act.Kind.NONE && a.act().kind() != Act.Kind.SILU) {
                int src = node.input(0);
                if (ops[src] instanceof Op.Conv2d c && c.act().kind() == Act.Kind.NONE
                        && consumers.get(src).size() == 1 && src != g.output()) {
                    ops[src] = c.withAct(a.act());
                    fusedAway[node.id()] = true;
                }
            }
        }
        return rebuild(g, ops, fusedAway, new int[n][]);
    }

    static Graph fuseResiduals(Graph g) {
        return fuseSums(g, false);
    }

    static Graph fuseOuterResiduals(Graph g) {
        return fuseSums(g, true);
    }

    /**
     * A convolution without a residual ({@code outer} false), or with one but no outer residual
     * ({@code outer} true), whose scaled sum with another tensor is its only use, becomes one
     * convolution carrying that sum as its residual (or outer residual).
     */
    private static Graph fuseSums(Graph g, boolean outer) {
        List<List<Integer>> consumers = g.consumers();
        int n = g.size();
        Op[] ops = new Op[n];
        for (Node node : g.nodes()) ops[node.id()] = node.op();
        boolean[] gone = new boolean[n];
        int[][] inputs = new int[n][];
        for (Node node : g.nodes()) {
            if (!(node.op() instanceof Op.Conv2d c) || c.hasResidual() != outer || c.hasOuterResidual()) continue;
            ScaledSum sum = scaledSum(g, consumers, node.id());
            // an add of two such convolutions (a VAE resnet's conv_shortcut + conv2) takes the later; the earlier stays a node
            // (the later one's input is the longer path; the earlier one's output is then the residual, already made)
            if (sum == null || !(ops[sum.add()] instanceof Op.Add)) continue;
            if (sum.other() > node.id() && sum.scaleNode() < 0 && eligible(g, consumers, sum.other(), sum.add(), outer)) continue;
            // the add becomes the convolution (it keeps the add's id, so its readers need no change); the scale goes
            ops[sum.add()] = outer ? c.withOuterResidual(sum.scale()) : c.withResidual(sum.scale());
            inputs[sum.add()] = outer ? new int[] {node.input(0), node.input(1), sum.other()} : new int[] {node.input(0), sum.other()};
            gone[node.id()] = true;
            if (sum.scaleNode() >= 0) gone[sum.scaleNode()] = true;
        }
        return rebuild(g, ops, gone, inputs);
    }

    /** Whether {@code other} is a convolution this pass could fuse into {@code add} as well (a plain sum of the two, nothing else reading it). */
    private static boolean eligible(Graph g, List<List<Integer>> consumers, int other, int add, boolean outer) {
        return g.node(other).op() instanceof Op.Conv2d c && c.hasResidual() == outer && !c.hasOuterResidual()
                && single(consumers, other, g) && consumers.get(other).getFirst() == add;
    }

    /** out = scale * node + other, found in the graph as an add (node {@code add}) after an optional scale node (-1 if none). */
    private record ScaledSum(int add, int other, float scale, int scaleNode) {}

    /** Whether node {@code id}'s only reader is a two-input add, directly or through a scale that is its only reader. */
    private static ScaledSum scaledSum(Graph g, List<List<Integer>> consumers, int id) {
        int at = id, scaleNode = -1;
        float scale = 1f;
        if (single(consumers, at, g) && g.node(consumers.get(at).getFirst()).op() instanceof Op.Scale s) {
            at = consumers.get(at).getFirst();
            scaleNode = at;
            scale = s.factor();
        }
        if (!single(consumers, at, g)) return null;
        Node add = g.node(consumers.get(at).getFirst());
        if (!(add.op() instanceof Op.Add) || add.arity() != 2 || add.input(0) == add.input(1) || scale == 0f) return null;
        return new ScaledSum(add.id(), add.input(0) == at ? add.input(1) : add.input(0), scale, scaleNode);
    }

    private static boolean single(List<List<Integer>> consumers, int id, Graph g) {
        return consumers.get(id).size() == 1 && id != g.output();
    }

    /** A new graph without the {@code gone} nodes; a node whose input is gone reads what replaced it. */
    private static Graph rebuild(Graph g, Op[] ops, boolean[] gone, int[][] newInputs) {
        int n = g.size();
        int[] remap = new int[n];
        List<Node> out = new ArrayList<>();
        int[] channels = new int[n];
        for (Node node : g.nodes()) {
            int id = node.id();
            if (gone[id]) {
                remap[id] = node.arity() > 0 ? remap[node.input(0)] : -1;
                continue;
            }
            int[] ins = newInputs[id] != null ? newInputs[id].clone() : node.inputs();
            for (int i = 0; i < ins.length; i++) ins[i] = remap[ins[i]];
            remap[id] = out.size();
            channels[out.size()] = g.channels(id);
            out.add(new Node(out.size(), ops[id], ins, node.name()));
        }
        int[] ch = java.util.Arrays.copyOf(channels, out.size());
        return new Graph(out, ch, remap[g.output()]);
    }
}
