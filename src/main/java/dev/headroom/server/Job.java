package dev.headroom.server;

/**
 * A job as the store keeps it. Times are milliseconds since the epoch (0: not yet).
 *
 * @param seq            submission order (the store's row number)
 * @param params         the request's params, as canonical JSON
 * @param inputHash      SHA-256 of the uploaded bytes
 * @param peakBytes      the planned peak of device memory (weights included)
 * @param weightBytes    the planned bytes of its model's weights on the device
 * @param tile           the tile edge chosen at submission (input pixels)
 * @param batch          tiles per run
 * @param attempts       runs of it that a crash of the server interrupted
 * @param cacheKey       the result cache's key for it
 * @param cached         whether its result came from the cache
 * @param resultHash     SHA-256 of the result file (its ETag)
 * @param cancelRequested a cancel reached it while it ran; it stops at the next tile
 */
public record Job(String id, long seq, JobState state, int priority, String model, String params, String inputHash,
                  int width, int height, long peakBytes, long weightBytes, int tile, int batch, int attempts, String error, String cacheKey,
                  boolean cached, String resultHash, long resultBytes, int progressDone, int progressTotal, String idempotencyKey,
                  boolean cancelRequested, String owner, long leaseUntil, long created, long started, long finished) {}
