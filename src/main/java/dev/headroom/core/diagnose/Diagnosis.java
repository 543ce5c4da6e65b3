package dev.headroom.core.diagnose;

import java.util.List;

/**
 * The result of reading a whole log: every incident in order of first appearance, how many lines
 * were read, and, when no memory-related incident was found, the last error the log shows (so
 * the answer can say what did fail without inventing a memory problem).
 */
public record Diagnosis(long lines, List<Incident> incidents, int incidentsDropped, String lastError, long lastErrorLine) {
    public boolean clean() {
        return incidents.isEmpty();
    }
}
