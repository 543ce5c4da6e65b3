package dev.headroom.server;

/** A job's states; succeeded, failed and cancelled are final. */
public enum JobState {
    queued, running, succeeded, failed, cancelled;

    public boolean terminal() {
        return this == succeeded || this == failed || this == cancelled;
    }

    /** The state named by an API query parameter, or IllegalArgumentException naming the valid ones. */
    public static JobState parse(String s) {
        for (JobState v : values()) if (v.name().equals(s)) return v;
        throw new IllegalArgumentException("state '" + s + "' is not one of queued, running, succeeded, failed, cancelled");
    }
}
