package dev.headroom.server;

import dev.headroom.runtime.Session;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * A device's sessions of finished jobs, idle, at most {@code maxIdle}, each known by the job
 * shapes ({@link DeviceSlot#shape}) it ran: the next job takes one with its convolution plans
 * already built. On the H200, building them (cuDNN plan finalisation, which runs one at a time
 * across the process) was most of a short job's time without kept sessions, and kept two GPUs
 * from doing more work than one.
 *
 * <p>A job takes the session set aside for it at admission ({@link #hold}), else an idle one that
 * ran its shape, else one that ran its model at another shape, else the most recently kept, else a
 * new one. Only a job that went well gives its session back ({@link Lease#clean}): a failed or
 * stopped job's session is closed. Thread-safe.
 */
public final class SessionPool implements AutoCloseable {
    /** Job shapes a kept session is known by (its plans beyond its own bound are dropped anyway: Convolutions' KEPT_SHAPES). */
    static final int KEPT_SHAPES = 64;

    /** An idle session and the job shapes it has run, so it holds their convolution plans. */
    private record Kept(Session session, Set<String> shapes, int number) {}

    private final Supplier<Session> open;
    private final int maxIdle;
    private final ArrayDeque<Kept> idle = new ArrayDeque<>();
    /** Idle sessions set aside at admission for a job that has not taken it yet, by job id. */
    private final Map<String, Kept> held = new HashMap<>();
    private boolean closing;
    /** Sessions opened so far: each one's number (from 1), which a job's end event names. */
    private int opened;

    SessionPool(Supplier<Session> open, int maxIdle) {
        this.open = open;
        this.maxIdle = maxIdle;
    }

    /**
     * A session for job {@code jobId} (may be null) of {@code shape} (may be null): the one held for
     * the job, else the idle one best for the shape, else a new one.
     */
    Lease lease(String jobId, String shape) {
        synchronized (idle) {
            Kept k = jobId == null ? null : held.remove(jobId);
            if (k == null) k = pickIdle(shape);
            if (k != null) return new Lease(k.session(), k.shapes(), shape, k.number());
        }
        Session fresh = open.get();
        int number;
        synchronized (idle) {
            number = ++opened;
        }
        return new Lease(fresh, new LinkedHashSet<>(), shape, number);
    }

    /** Takes the idle session best for {@code shape} out of the pool (null when there is none); call holding {@link #idle}. */
    private Kept pickIdle(String shape) {
        Kept pick = null;
        if (shape != null) {
            String model = shape.substring(0, shape.indexOf(' ') + 1);
            for (Kept k : idle) {
                if (k.shapes().contains(shape)) {
                    pick = k;
                    break;
                }
                if (pick == null && k.shapes().stream().anyMatch(x -> x.startsWith(model))) pick = k;
            }
        }
        if (pick == null) pick = idle.peek();
        if (pick != null) idle.remove(pick);
        return pick;
    }

    /** Sets the idle session best for {@code shape} aside for job {@code jobId}, if there is one. */
    void hold(String jobId, String shape) {
        synchronized (idle) {
            Kept k = pickIdle(shape);
            if (k != null) held.put(jobId, k);
        }
    }

    /** The job ended: a session held for it that it never took goes back to the pool. */
    void unhold(String jobId) {
        Session drop = null;
        synchronized (idle) {
            Kept k = held.remove(jobId);
            if (k == null) return;
            if (!closing && idle.size() < maxIdle) idle.push(k);
            else drop = k.session();
        }
        if (drop != null) drop.close();
    }

    int idle() {
        synchronized (idle) {
            return idle.size();
        }
    }

    Set<String> warmShapes() {
        synchronized (idle) {
            Set<String> out = new HashSet<>();
            for (Kept k : idle) out.addAll(k.shapes());
            return out;
        }
    }

    /** Closes the idle sessions and those held for jobs that never took them; sessions lent out are closed when given back. */
    @Override
    public void close() {
        List<Session> sessions;
        synchronized (idle) {
            closing = true;
            sessions = new ArrayList<>(idle.stream().map(Kept::session).toList());
            held.values().forEach(k -> sessions.add(k.session()));
            idle.clear();
            held.clear();
        }
        for (Session x : sessions) x.close();
    }

    /** A session lent to one job; closing it keeps it (trimmed: its workspace freed) for the next job if the job said {@link #clean}, else closes it. */
    public final class Lease implements AutoCloseable {
        private final Session session;
        private final Set<String> shapes;
        private final String shape;
        private final int number;
        private boolean clean, closed;

        private Lease(Session session, Set<String> shapes, String shape, int number) {
            this.session = session;
            this.shapes = shapes;
            this.shape = shape;
            this.number = number;
        }

        public Session session() {
            return session;
        }

        /** The session's number on its device (from 1, in the order opened): the same for every job it runs. */
        public int number() {
            return number;
        }

        /** The job ended well: the session is fit for the next one (a failed or stopped job's session is closed instead). */
        public void clean() {
            clean = true;
        }

        @Override
        public void close() {
            if (closed) return;
            closed = true;
            if (clean) {
                session.trim();
                if (shape != null && shapes.add(shape) && shapes.size() > KEPT_SHAPES) shapes.remove(shapes.iterator().next());
                synchronized (idle) {
                    if (!closing && idle.size() < maxIdle) {
                        idle.push(new Kept(session, shapes, number));
                        return;
                    }
                }
            }
            session.close();
        }
    }
}
