package dev.headroom.core.graph;

/**
 * Where each node's output lives, so that concatenation costs no copy: a node whose output is an
 * input of a concatenation is written straight into that concatenation's buffer, at its channel
 * offset. Concatenations of concatenations (the dense blocks of RDN and RRDBNet, where each layer
 * concatenates the previous concatenation with one more feature map) nest, so one buffer per
 * dense block holds every feature map of the block.
 *
 * <p>A value is placed in at most one concatenation (the first that reads it); any other
 * concatenation that reads it copies it. The graph input is never placed: the caller owns it.
 */
public final class ConcatPlan {
    private final int[] root;
    private final int[] offset;

    private ConcatPlan(int[] root, int[] offset) {
        this.root = root;
        this.offset = offset;
    }

    public static ConcatPlan of(Graph g) {
        int n = g.size();
        int[] parent = new int[n];
        int[] local = new int[n];
        java.util.Arrays.fill(parent, -1);
        for (Node node : g.nodes()) {
            if (!(node.op() instanceof Op.Concat)) continue;
            int off = 0;
            for (int in : node.inputs()) {
                if (in != 0 && in != g.output() && parent[in] == -1) {
                    parent[in] = node.id();
                    local[in] = off;
                }
                off += g.channels(in);
            }
        }
        int[] root = new int[n];
        int[] offset = new int[n];
        // parents are always later nodes, so resolving from the last node back finds roots first
        for (int id = n - 1; id >= 0; id--) {
            if (parent[id] == -1) {
                root[id] = id;
                offset[id] = 0;
            } else {
                root[id] = root[parent[id]];
                offset[id] = offset[parent[id]] + local[id];
            }
        }
        return new ConcatPlan(root, offset);
    }

    /** The node that owns the buffer node {@code id} is written into (itself if it owns one). */
    public int root(int id) {
        return root[id];
    }

    /** Channel offset of node {@code id}'s output within its root's buffer. */
    public int offset(int id) {
        return offset[id];
    }
}
