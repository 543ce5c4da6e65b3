package dev.headroom.core.diagnose;

import java.util.List;

/**
 * One failure found in a log: where (first line, and how many times the same message appeared),
 * what kind, the message itself, the device, the numbers it states, and what the log said about
 * the job at that point. {@link #explanation} and {@link #recommendations} come from {@link Advisor}.
 */
public record Incident(int line, int times, IncidentKind kind, String device, String message, OomNumbers numbers,
                       JobContext.Snapshot job, String explanation, List<Recommendation> recommendations) {

    /** A change to make, most effective first; {@code why} says what it addresses. */
    public record Recommendation(String action, String why) {}
}
