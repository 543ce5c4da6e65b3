package dev.headroom.core.plan;

import dev.headroom.core.graph.ConcatPlan;
import dev.headroom.core.graph.Graph;
import dev.headroom.core.graph.Node;
import dev.headroom.core.graph.Op;
import java.util.ArrayList;
import java.util.List;

/**
 * Plans a graph's memory for one input shape, following the executor's order exactly: node i runs
 * at step i; a concatenation root's buffer is alive from the step of the first node that writes
 * into it to the last step that reads any part of it (a part nobody reads dies where it is
 * written); the output's buffer lives to the end. Offsets come from {@link ArenaPacker}.
 */
public final class Planner {
    private Planner() {}

    public static MemoryPlan plan(Graph g, int n, int h, int w, DeviceModel model) {
        int size = g.size();
        int[] hs = g.heights(h), ws = g.widths(w);
        ConcatPlan placement = ConcatPlan.of(g);
        List<List<Integer>> consumers = g.consumers();
        int[] first = new int[size], last = new int[size];
        java.util.Arrays.fill(first, -1);
        int end = size - 1;
        for (Node node : g.nodes()) {
            int id = node.id();
            if (id == 0) continue;
            if (hs[id] < 1 || ws[id] < 1) throw new IllegalArgumentException("input " + w + "x" + h + " is too small for layer '" + node.name() + "'");
            int root = placement.root(id);
            if (first[root] < 0) first[root] = id;
            int dies = id == g.output() ? end : consumers.get(id).stream().mapToInt(Integer::intValue).max().orElse(id);
            last[root] = Math.max(last[root], dies);
        }
        List<Integer> roots = new ArrayList<>();
        for (int i = 1; i < size; i++) if (first[i] >= 0) roots.add(i);
        long[] bytes = new long[roots.size()];
        int[] f = new int[roots.size()], l = new int[roots.size()];
        for (int k = 0; k < roots.size(); k++) {
            int r = roots.get(k);
            bytes[k] = DeviceModel.align((long) n * hs[first[r]] * ws[first[r]] * g.channels(r) * model.elementBytes());
            f[k] = first[r];
            l[k] = last[r];
        }
        long[] offsets = ArenaPacker.pack(bytes, f, l);
        List<MemoryPlan.Buffer> buffers = new ArrayList<>();
        for (int k = 0; k < roots.size(); k++) buffers.add(new MemoryPlan.Buffer(roots.get(k), bytes[k], f[k], l[k], offsets[k]));

        long weights = 0, persistent = 0, scratch = 0;
        for (Node node : g.nodes()) {
            int id = node.id();
            if (id == 0) continue;
            int src = node.input(0);
            int[] in = {n, hs[src], ws[src], g.channels(src)}, out = {n, hs[id], ws[id], g.channels(id)};
            boolean inDense = src == 0 || g.channels(src) == g.channels(placement.root(src));
            boolean outDense = g.channels(id) == g.channels(placement.root(id));
            scratch = Math.max(scratch, model.scratch(node, in, out, inDense, outDense));
            persistent = Math.max(persistent, model.persistent(node, in, out));
            if (node.op() instanceof Op.Conv2d c) weights += model.weightBytes(c);
        }
        long input = model.inputBytes(n, h, w, g.inputChannels());
        return new MemoryPlan(List.copyOf(buffers), ArenaPacker.arenaBytes(bytes, offsets), ArenaPacker.lowerBound(bytes, f, l),
                weights, input, persistent, scratch);
    }
}
