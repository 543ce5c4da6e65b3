package dev.headroom.runtime.memory;

import java.io.IOException;
import java.io.Writer;
import java.util.ArrayList;
import java.util.List;

/**
 * A bounded record of what a device's memory did: every allocation and free, segment growth and
 * shrinkage, failed allocation and rung of the degrade ladder, tagged with the category, op and
 * job it was for, and the allocated and reserved totals just after it. When full, the oldest
 * events are dropped (and counted), so tracing a long job costs a fixed amount of heap.
 *
 * <p>{@link #write} produces JSON lines, one event each, which {@code headroom memory-report} reads.
 */
public final class MemoryTrace {
    public enum Kind { ALLOC, FREE, GROW, SHRINK, OOM, RUNG, PRESSURE, JOB, LOAD, EVICT, RELOAD }

    /**
     * @param nanos     since the trace started
     * @param detail    for RUNG: the rung's details; for PRESSURE: the new level; for JOB: "start"; for LOAD,
     *                  EVICT and RELOAD (a model's weights; category weights/&lt;model&gt;): where from or to; else null
     */
    public record Event(long seq, long nanos, Kind kind, long address, long bytes, String category, String op, String job,
                        long allocated, long reserved, String detail) {}

    private final Event[] ring;
    private final long start = System.nanoTime();
    private long seq;

    public MemoryTrace(int capacity) {
        if (capacity < 1) throw new IllegalArgumentException("trace capacity " + capacity);
        ring = new Event[capacity];
    }

    public synchronized void add(Kind kind, long address, long bytes, String category, String op, String job, long allocated, long reserved, String detail) {
        ring[(int) (seq % ring.length)] = new Event(seq, System.nanoTime() - start, kind, address, bytes, category, op, job, allocated, reserved, detail);
        seq++;
    }

    /** Events still held, oldest first. */
    public synchronized List<Event> events() {
        List<Event> out = new ArrayList<>();
        long from = Math.max(0, seq - ring.length);
        for (long i = from; i < seq; i++) out.add(ring[(int) (i % ring.length)]);
        return out;
    }

    public synchronized long dropped() {
        return Math.max(0, seq - ring.length);
    }

    public void write(Writer out) throws IOException {
        for (Event e : events()) {
            out.write(String.format("{\"seq\":%d,\"t_ns\":%d,\"kind\":\"%s\",\"address\":%d,\"bytes\":%d,\"category\":%s,\"op\":%s,\"job\":%s,"
                            + "\"allocated\":%d,\"reserved\":%d,\"detail\":%s}%n",
                    e.seq, e.nanos, e.kind.name().toLowerCase(), e.address, e.bytes, json(e.category), json(e.op), json(e.job),
                    e.allocated, e.reserved, json(e.detail)));
        }
    }

    private static String json(String s) {
        if (s == null) return "null";
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }
}
