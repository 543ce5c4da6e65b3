package dev.headroom.core.sched;

import java.util.Set;

/**
 * Where a job goes in a fleet of servers sharing one queue, and among the devices of one server:
 * each claims only jobs it can admit, and leaves for a while a job whose model is resident on
 * another server (or device) that has a free slot, so that one (which skips the model load) takes it. The wait is bounded: past
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

    /**
     * Between the devices of one server: a job whose model is resident on another device with a
     * free slot, and not here, is left to that device for up to {@code maxWaitMillis}, but only when
     * loading it here would evict another model ({@code needBytes > roomWithoutEviction}). Where the
     * model fits beside the others every device takes every model, so no device is left with all
     * of one heavy model's jobs: with the affinity always on, one H200 of two ran 130 of 150
     * RRDBNet jobs; with this rule each ran 60 of 120.
     *
     * @param needBytes            what admitting the job here needs (its peak, plus its weights if not resident here)
     * @param roomWithoutEviction  what this device can give without evicting a model
     */
    public static boolean leaveToOtherDevice(String model, long waitedMillis, long needBytes, long roomWithoutEviction,
                                             Set<String> residentHere, Set<String> residentOnFreeDevices, long maxWaitMillis) {
        return needBytes > roomWithoutEviction && leaveToOthers(model, waitedMillis, residentHere, residentOnFreeDevices, maxWaitMillis);
    }
}
