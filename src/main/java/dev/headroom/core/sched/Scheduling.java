package dev.headroom.core.sched;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * Which queued job a device admits next: pure policy, no clock and no threads (the caller passes
 * the time and the device's state).
 *
 * <p><b>Priority with aging.</b> A job's effective priority is its priority plus
 * {@link Config#agingPerMinute} for every minute it has waited, so a low-priority job overtakes
 * newer high-priority ones after a bounded wait: nothing starves. Ties go to the earlier job.
 *
 * <p><b>Affinity.</b> The head is the job of highest effective priority. If its model is not
 * resident and loading it would take evicting another model's weights (its need is more than the
 * device has free beside everything on it, {@link DeviceState#roomWithoutEviction}), the best-ranked
 * job among the first {@link Config#lookAhead} whose model is resident goes first instead, but only
 * while its effective priority is within {@link Config#affinityBonus} of the head's. A model that
 * loads into free room is no churn, and is taken in order: on two GPUs, affinity without that
 * condition kept each GPU on the models it had loaded first (one ran 130 of the 150 heavy jobs at
 * 100% busy while the other idled at 25%). Both age at the same rate, so a newcomer of equal priority stops qualifying once
 * the head has waited {@code affinityBonus / agingPerMinute} minutes longer: affinity bends the
 * order, never without bound. Within the model so chosen, a job whose shape ({@link Waiting#shape})
 * the device has warm (a kept session built its convolution plans) goes first under the same
 * look-ahead and bonus: it skips building the plans.
 *
 * <p><b>Admission.</b> The chosen job is admitted only if its planned peak fits the device's
 * headroom and the device runs fewer than {@link Config#maxRunning} jobs. When it does not fit,
 * nothing else is admitted in its place (no backfill): running jobs finish, memory frees, and the
 * head goes next, so a large job is never starved by a stream of small ones. A job that cannot fit
 * even on an empty device is refused at submission, never queued.
 */
public final class Scheduling {
    private Scheduling() {}

    /**
     * @param agingPerMinute priority levels a waiting job gains per minute
     * @param lookAhead      how many jobs, in order, affinity may look at (the issue says 32)
     * @param affinityBonus  how far below the head (in priority levels) a job with a resident model may be and still go first
     * @param maxRunning     jobs a device runs at once
     */
    public record Config(double agingPerMinute, int lookAhead, double affinityBonus, int maxRunning) {
        public static final Config DEFAULT = new Config(1.0, 32, 1.0, 4);

        public Config {
            if (agingPerMinute < 0 || lookAhead < 1 || affinityBonus < 0 || maxRunning < 1) {
                throw new IllegalArgumentException("bad scheduling config " + agingPerMinute + "/" + lookAhead + "/" + affinityBonus + "/" + maxRunning);
            }
        }

        public Config withMaxRunning(int n) {
            return new Config(agingPerMinute, lookAhead, affinityBonus, n);
        }
    }

    /**
     * What the device looks like now.
     *
     * @param warmShapes          shapes ({@link Waiting#shape}) whose work the device has prepared and would reuse for the next job
     * @param roomWithoutEviction bytes free beside everything on the device (running jobs' reservations and all weights,
     *                            idle ones too): a job whose need fits loads its model without evicting any
     */
    public record DeviceState(long headroomBytes, int running, Set<String> residentModels, Set<String> warmShapes, long roomWithoutEviction) {
        /** A device where loading a model always evicts (affinity always applies). */
        public DeviceState(long headroomBytes, int running, Set<String> residentModels) {
            this(headroomBytes, running, residentModels, Set.of(), 0);
        }
    }

    public static double effectivePriority(Waiting j, long now, Config c) {
        return j.priority() + c.agingPerMinute() * Math.max(0, now - j.enqueued()) / 60_000.0;
    }

    /** The queue in the order the policy serves it, without affinity: effective priority, then submission order. */
    public static List<Waiting> order(List<Waiting> queue, long now, Config c) {
        List<Waiting> out = new ArrayList<>(queue);
        out.sort(Comparator.comparingDouble((Waiting j) -> -effectivePriority(j, now, c)).thenComparingLong(Waiting::seq));
        return out;
    }

    /** The job to admit now, or empty (nothing queued, the device is full, or the chosen job's memory is not free yet). */
    public static Optional<Waiting> next(List<Waiting> queue, long now, DeviceState device, Config c) {
        if (queue.isEmpty() || device.running() >= c.maxRunning()) return Optional.empty();
        Waiting pick = choose(queue, now, device.residentModels(), device.warmShapes(), device.roomWithoutEviction(), c);
        return pick.peakBytes() <= device.headroomBytes() ? Optional.of(pick) : Optional.empty();
    }

    /** The job that goes next when memory allows: the head, or a job with a resident model close enough behind it. */
    public static Waiting choose(List<Waiting> queue, long now, Set<String> resident, Config c) {
        return choose(queue, now, resident, Set.of(), 0, c);
    }

    /**
     * The job that goes next when memory allows: the head, or (when the head's model would evict
     * another to load) a job with a resident model close enough behind it; then, among jobs of that choice's model close enough behind the head,
     * the best-ranked one whose shape is warm, if the choice's shape is not. Shape affinity never
     * changes the model a device runs next: on two GPUs it once did, and each GPU's kept sessions
     * settled on models (one GPU ran the heavy model's jobs at 100% while the other idled at 25%).
     */
    public static Waiting choose(List<Waiting> queue, long now, Set<String> resident, Set<String> warm, long roomWithoutEviction, Config c) {
        List<Waiting> ordered = order(queue, now, c);
        Waiting head = ordered.getFirst();
        List<Waiting> behind = ordered.subList(1, Math.min(c.lookAhead(), ordered.size()));
        double floor = effectivePriority(head, now, c) - c.affinityBonus();
        Waiting pick = head;
        if (!resident.contains(head.model()) && head.peakBytes() > roomWithoutEviction) {
            for (Waiting j : behind) {
                if (resident.contains(j.model()) && effectivePriority(j, now, c) >= floor) {
                    pick = j;
                    break;
                }
            }
        }
        if (warm.isEmpty() || warm.contains(pick.shape())) return pick;
        for (Waiting j : ordered.subList(0, Math.min(c.lookAhead(), ordered.size()))) {
            if (j.model().equals(pick.model()) && warm.contains(j.shape()) && effectivePriority(j, now, c) >= floor) return j;
        }
        return pick;
    }
}
