package dev.headroom.server;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Each job's events in order (queued, admitted, tile k of n, then succeeded, failed or
 * cancelled), numbered from 1, for server-sent event streams that may start late or resume with
 * Last-Event-ID. Kept in memory for the most recent jobs only; a stream for an older job (or one
 * from before a restart) starts from the job's stored state instead.
 */
public final class JobEvents {
    public record Event(long id, String name, Map<String, Object> data) {
        public boolean terminal() {
            return name.equals("succeeded") || name.equals("failed") || name.equals("cancelled");
        }
    }

    private static final int JOBS_KEPT = 20_000;

    /** Told of every event as it is emitted (the dashboard's timeline marks admissions and ends). */
    public interface Listener {
        void emitted(String job, Event e);
    }

    private final List<Listener> listeners = new java.util.concurrent.CopyOnWriteArrayList<>();

    public void listen(Listener l) {
        listeners.add(l);
    }

    private final Map<String, List<Event>> logs = new LinkedHashMap<>(16, 0.75f, false) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, List<Event>> e) {
            return size() > JOBS_KEPT;
        }
    };

    public void emit(String job, String name, Map<String, Object> data) {
        Event e;
        synchronized (this) {
            List<Event> l = logs.computeIfAbsent(job, k -> new ArrayList<>());
            if (!l.isEmpty() && l.getLast().terminal()) return;   // nothing after the end
            e = new Event(l.size() + 1, name, data);
            l.add(e);
            notifyAll();
        }
        for (Listener x : listeners) {
            try {
                x.emitted(job, e);
            } catch (RuntimeException ex) {
                // a listener (the dashboard) is for show: its failure must not reach the job that emitted the event
                System.err.println("headroom serve: a listener of job events failed on " + name + " of job " + job + ": " + ex);
            }
        }
    }

    public synchronized boolean known(String job) {
        return logs.containsKey(job);
    }

    /** Events after {@code after}, waiting up to {@code millis} for one to come; null when the job's log is gone. */
    public synchronized List<Event> after(String job, long after, long millis) throws InterruptedException {
        long until = System.currentTimeMillis() + millis;
        while (true) {
            List<Event> l = logs.get(job);
            if (l == null) return null;
            if (l.size() > after) return List.copyOf(l.subList((int) after, l.size()));
            long left = until - System.currentTimeMillis();
            if (left <= 0) return List.of();
            wait(left);
        }
    }
}
