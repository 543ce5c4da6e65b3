package dev.headroom.runtime.memory;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * A node of a device's budget tree (after Apache Arrow's allocator tree): bytes charged here count
 * against this node's limit and every ancestor's, and are kept with their peak. Reading any figure
 * is a field read, never a driver call.
 *
 * <p>The device ledger's tree: the root is the device budget (the card, or --vram-budget); its
 * children are the categories the allocator charges (weights, activations, workspace, and the
 * allocator's cache: reserved bytes no block uses), and a job's activations are a child of
 * activations. Sums hold by construction: a parent's use is the sum of its children's.
 *
 * <p>Not thread-safe by itself; the ledger that owns the tree synchronises.
 */
public final class Budget {
    /** A charge that would take a node past its limit; nothing was charged. */
    public static final class Exceeded extends RuntimeException {
        public final Budget node;
        public final long requested;

        Exceeded(Budget node, long requested) {
            super(String.format("budget '%s' exceeded: %d bytes requested, %d of %d in use", node.path(), requested, node.used, node.limit));
            this.node = node;
            this.requested = requested;
        }
    }

    private final String name;
    private final Budget parent;
    private final long limit;
    private long used, peak;
    private final List<Budget> children = new ArrayList<>();
    private boolean closed;

    private Budget(String name, Budget parent, long limit) {
        this.name = name;
        this.parent = parent;
        this.limit = limit;
    }

    public static Budget root(String name, long limit) {
        return new Budget(name, null, limit);
    }

    /** A child with its own limit (Long.MAX_VALUE: only the ancestors' limits apply). */
    public Budget child(String name, long limit) {
        if (closed) throw new IllegalStateException("budget '" + path() + "' is closed");
        Budget c = new Budget(name, this, limit);
        children.add(c);
        return c;
    }

    public Budget child(String name) {
        return child(name, Long.MAX_VALUE);
    }

    /** Adds {@code bytes} here and to every ancestor, or throws {@link Exceeded} and changes nothing. */
    public void charge(long bytes) {
        for (Budget b = this; b != null; b = b.parent) {
            if (b.used + bytes > b.limit) throw new Exceeded(b, bytes);
        }
        for (Budget b = this; b != null; b = b.parent) {
            b.used += bytes;
            b.peak = Math.max(b.peak, b.used);
        }
    }

    /** Takes {@code bytes} back from here and every ancestor. */
    public void credit(long bytes) {
        if (bytes > used) throw new IllegalStateException("budget '" + path() + "' credited " + bytes + " bytes but holds " + used);
        for (Budget b = this; b != null; b = b.parent) b.used -= bytes;
    }

    /** Bytes that could still be charged here: the smallest room left on the way to the root. */
    public long available() {
        long room = Long.MAX_VALUE;
        for (Budget b = this; b != null; b = b.parent) room = Math.min(room, b.limit - b.used);
        return room;
    }

    public long limit() {
        return limit;
    }

    public long used() {
        return used;
    }

    public long peak() {
        return peak;
    }

    public String name() {
        return name;
    }

    /** The node above, or null for the root. */
    public Budget parent() {
        return parent;
    }

    public String path() {
        return parent == null ? name : parent.path() + "/" + name;
    }

    public List<Budget> children() {
        return Collections.unmodifiableList(children);
    }

    /**
     * Detaches this node from its parent. A node that still holds bytes is a leak: the exception
     * names it and each child that holds them, and the node stays attached.
     */
    public void close() {
        if (used != 0) {
            StringBuilder s = new StringBuilder("budget '" + path() + "' closed with " + used + " bytes in use");
            for (Budget c : children) if (c.used != 0) s.append("; ").append(c.name).append(": ").append(c.used);
            throw new IllegalStateException(s + " (a leak)");
        }
        closed = true;
        if (parent != null) parent.children.remove(this);
    }

    @Override
    public String toString() {
        return path() + " " + used + "/" + (limit == Long.MAX_VALUE ? "unlimited" : limit) + " (peak " + peak + ")";
    }
}
