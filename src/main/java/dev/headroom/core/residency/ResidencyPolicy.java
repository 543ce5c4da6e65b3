package dev.headroom.core.residency;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Which models' weights stay where: the residency manager's decisions, as pure bookkeeping (no
 * memory is touched here; the runtime's {@code Residency} carries the decisions out), so they are
 * tested in milliseconds on random sequences.
 *
 * <p>A model is known by a key. Its weights are in one of three places ({@link Where}): only on
 * disk, in the host cache (a host copy that reloads at copy speed), or on the device (it may keep
 * its host copy too). Rules:
 * <ul>
 * <li>A model in use (reference count above zero) is never evicted; nor is a {@link Priority#PINNED} one.
 * <li>{@link #victims make room for N bytes}: idle device-resident models go in priority order,
 *     LOW, then NORMAL, then HIGH, and least recently used first within a class, until N bytes are
 *     freed; if all of them together free less than N, none is chosen (evicting them would not help).
 * <li>Host copies live within a host budget: after any change, the least recently used host
 *     copies of models not being loaded go first ({@link #hostOverflow}); a model whose host copy
 *     goes and that is not on the device is back to disk.
 * </ul>
 * Recency is a logical clock bumped on every {@link #acquire}. Not thread-safe: the runtime holds
 * its lock around every call.
 */
public final class ResidencyPolicy {
    /** Eviction classes; default NORMAL. */
    public enum Priority { PINNED, HIGH, NORMAL, LOW }

    public enum Where { DISK, HOST, DEVICE }

    /** A model's state as the policy sees it. */
    public record Status(String key, Priority priority, Where where, boolean hostCopy, int refs, long deviceBytes, long hostBytes, long lastUse) {}

    private static final class Entry {
        final String key;
        Priority priority;
        boolean onDevice, hostCopy;
        int refs;
        long deviceBytes, hostBytes, lastUse;

        Entry(String key, Priority priority) {
            this.key = key;
            this.priority = priority;
        }

        Where where() {
            return onDevice ? Where.DEVICE : hostCopy ? Where.HOST : Where.DISK;
        }
    }

    private final long hostBudget;
    private final Map<String, Entry> entries = new HashMap<>();
    private long clock;

    /** @param hostBudget bytes of host copies kept (--host-cache); 0 keeps none */
    public ResidencyPolicy(long hostBudget) {
        if (hostBudget < 0) throw new IllegalArgumentException("negative host cache " + hostBudget);
        this.hostBudget = hostBudget;
    }

    /**
     * Takes a reference to {@code key} (known from now on, on disk until {@link #onDevice}) and
     * marks it most recently used; {@code priority} replaces the model's class. Returns where its
     * weights are now: the caller loads them when that is not DEVICE.
     */
    public Where acquire(String key, Priority priority) {
        Entry e = entries.computeIfAbsent(key, k -> new Entry(k, priority));
        e.priority = priority;
        e.refs++;
        e.lastUse = ++clock;
        return e.where();
    }

    /** Gives back a reference from {@link #acquire}. */
    public void release(String key) {
        Entry e = entry(key);
        if (e.refs == 0) throw new IllegalStateException("model '" + key + "' released more often than acquired");
        e.refs--;
    }

    /** The model's weights are now on the device ({@code bytes} there) and, when {@code hostBytes} is above zero, in the host cache too. */
    public void onDevice(String key, long bytes, long hostBytes) {
        Entry e = entry(key);
        e.onDevice = true;
        e.deviceBytes = bytes;
        e.hostCopy = hostBytes > 0;
        e.hostBytes = hostBytes;
    }

    /** The model's weights left the device (evicted, or a load that failed); a host copy stays if it had one. */
    public void offDevice(String key) {
        Entry e = entry(key);
        e.onDevice = false;
        e.deviceBytes = 0;
    }

    /** The model's host copy was dropped. */
    public void hostDropped(String key) {
        Entry e = entry(key);
        e.hostCopy = false;
        e.hostBytes = 0;
    }

    /** Forgets an idle model that is neither on the device nor in the host cache. */
    public void forget(String key) {
        Entry e = entry(key);
        if (e.refs > 0 || e.onDevice || e.hostCopy) throw new IllegalStateException("model '" + key + "' is not idle on disk: " + status(e));
        entries.remove(key);
    }

    /**
     * Models to evict from the device to free at least {@code bytes}: idle, not pinned, lowest
     * class first and least recently used first within it, as few as that order allows. Empty when
     * all such models together hold less than {@code bytes} (or {@code bytes} is 0 or less).
     * Nothing changes until the caller reports {@link #offDevice}.
     */
    public List<String> victims(long bytes) {
        if (bytes <= 0) return List.of();
        List<Entry> idle = new ArrayList<>();
        for (Entry e : entries.values()) if (e.onDevice && e.refs == 0 && e.priority != Priority.PINNED) idle.add(e);
        idle.sort(Comparator.comparing((Entry e) -> -e.priority.ordinal()).thenComparingLong(e -> e.lastUse));
        List<String> out = new ArrayList<>();
        long freed = 0;
        for (Entry e : idle) {
            if (freed >= bytes) break;
            out.add(e.key);
            freed += e.deviceBytes;
        }
        return freed >= bytes ? out : List.of();
    }

    /** Every idle, unpinned device-resident model, in eviction order (for "evict all you can"). */
    public List<String> evictable() {
        return victims(Math.max(1, idleBytes()));
    }

    /** What an eviction by name (an operator's unload) may do now; see {@link #evictByName}. */
    public enum ByName { EVICT, IN_USE, NOT_ON_DEVICE }

    /**
     * Whether {@code key}'s weights may leave the device now because someone asked for that model
     * by name: never while a job holds it (IN_USE, whatever its class), otherwise yes when it is on
     * the device, pinned models included (they are kept from eviction for room, not from an
     * explicit unload). Nothing changes until the caller reports {@link #offDevice}.
     */
    public ByName evictByName(String key) {
        Entry e = entries.get(key);
        if (e != null && e.refs > 0) return ByName.IN_USE;
        return e != null && e.onDevice ? ByName.EVICT : ByName.NOT_ON_DEVICE;
    }

    private long idleBytes() {
        long b = 0;
        for (Entry e : entries.values()) if (e.onDevice && e.refs == 0 && e.priority != Priority.PINNED) b += e.deviceBytes;
        return b;
    }

    /**
     * Host copies to drop to get back within the host budget, least recently used first; a copy
     * of a model that is in use and not on the device is kept (it is being loaded from).
     */
    public List<String> hostOverflow() {
        long total = 0;
        List<Entry> copies = new ArrayList<>();
        for (Entry e : entries.values()) {
            if (!e.hostCopy) continue;
            total += e.hostBytes;
            if (e.onDevice || e.refs == 0) copies.add(e);
        }
        copies.sort(Comparator.comparingLong(e -> e.lastUse));
        List<String> out = new ArrayList<>();
        for (Entry e : copies) {
            if (total <= hostBudget) break;
            out.add(e.key);
            total -= e.hostBytes;
        }
        return out;
    }

    /** Whether a host copy of {@code bytes} may be kept at all (a model larger than the whole host budget is not cached). */
    public boolean fitsHostCache(long bytes) {
        return bytes <= hostBudget;
    }

    public long hostBudget() {
        return hostBudget;
    }

    /** Bytes of host copies held now. */
    public long hostBytes() {
        long b = 0;
        for (Entry e : entries.values()) if (e.hostCopy) b += e.hostBytes;
        return b;
    }

    public Status status(String key) {
        Entry e = entries.get(key);
        return e == null ? null : status(e);
    }

    /** Every known model, most recently used first. */
    public List<Status> statuses() {
        List<Status> out = new ArrayList<>();
        for (Entry e : entries.values()) out.add(status(e));
        out.sort(Comparator.comparingLong(Status::lastUse).reversed());
        return out;
    }

    private static Status status(Entry e) {
        return new Status(e.key, e.priority, e.where(), e.hostCopy, e.refs, e.deviceBytes, e.hostBytes, e.lastUse);
    }

    private Entry entry(String key) {
        Entry e = entries.get(key);
        if (e == null) throw new IllegalStateException("model '" + key + "' is not known to the residency manager");
        return e;
    }
}
