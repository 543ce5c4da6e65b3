package dev.headroom.core.sched;

import java.util.Set;

/**
 * Where a job goes in a fleet of servers sharing one queue: each server claims only jobs it can
 * admit, and leaves for a while a job whose model is resident on another server that has a free
 * slot, so that server (which skips the model load) takes it. The wait is bounded: past
 * {@code maxWaitMillis} in the queue, any server that can admit the job takes it, so a preferred
 * server that is busy or slow never holds a job back for long.
 */
public final class Placement {
    private Placement() {}

    /**
     * @param residentHere           models resident on this server
     * @param residentOnIdleOthers   models resident on other live servers that have a free slot now
     * @param waitedMillis           how long the job has been queued
     */
    public static boolean leaveToOthers(String model, long waitedMillis, Set<String> residentHere, Set<String> residentOnIdleOthers, long maxWaitMillis) {
        return !residentHere.contains(model) && residentOnIdleOthers.contains(model) && waitedMillis < maxWaitMillis;
    }
}
