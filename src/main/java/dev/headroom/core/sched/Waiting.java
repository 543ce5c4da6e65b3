package dev.headroom.core.sched;

/**
 * A queued job as the scheduling policy sees it.
 *
 * @param priority  the job's own priority (higher runs first)
 * @param enqueued  when it entered the queue, in milliseconds on the caller's clock
 * @param seq       submission order, the tie-breaker (first come, first served)
 * @param model     the model it runs, for affinity
 * @param peakBytes the planned peak it needs on the device while it runs
 * @param shape     what decides the work a device prepares for it beyond the model's weights (on a
 *                  GPU, convolution plans: model, input size, tile), for affinity to a device that
 *                  already ran that shape; the model's name where the caller does not know more
 */
public record Waiting(String id, int priority, long enqueued, long seq, String model, long peakBytes, String shape) {
    public Waiting(String id, int priority, long enqueued, long seq, String model, long peakBytes) {
        this(id, priority, enqueued, seq, model, peakBytes, model);
    }
}
