package dev.headroom.server;

import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The durable queue: jobs, the result cache's index and the server's settings. A job accepted by
 * {@link #insert} is never lost; every change of state is one atomic statement guarded by the state
 * it leaves (queued -> running only from queued, and so on), so a cancel racing with an admission
 * has exactly one winner.
 *
 * <p>Made for more than one implementation: SQLite for one machine ({@link SqliteJobStore}); a
 * fleet's PostgreSQL store implements {@link #claim} as {@code UPDATE ... WHERE id = (SELECT ...
 * FOR UPDATE SKIP LOCKED)} and keeps {@code owner}/{@code leaseUntil} alive with {@link #renew}, so
 * {@link #recover} can hand back jobs whose server died.
 */
public interface JobStore extends AutoCloseable {

    /** Stores a new queued (or, for a cache hit, already succeeded) job; with an idempotency key already used, returns that job instead. */
    Job insert(Job job);

    Optional<Job> get(String id);

    /** Jobs in submission order after the one numbered {@code afterSeq} (0: from the start), optionally of one state. */
    List<Job> list(JobState state, long afterSeq, int limit);

    /** Queued jobs, highest priority first, then oldest: candidates for the scheduler. */
    List<Job> queued(int limit);

    /** queued -> running for {@code owner} until {@code leaseUntil}; false if it was not queued (cancelled, or claimed elsewhere). */
    boolean claim(String id, String owner, long leaseUntil, long now);

    /** Extends the leases of every job {@code owner} runs. */
    void renew(String owner, long leaseUntil);

    void progress(String id, int done, int total);

    /** running -> a final state, with its result or error; false if it was not running. */
    boolean finish(String id, JobState to, String error, String resultHash, long resultBytes, long now);

    /**
     * Cancels: a queued job becomes cancelled at once; a running one is marked and stops at its
     * next tile. Returns the state after the call, or empty for an unknown id.
     */
    Optional<JobState> cancel(String id, long now);

    /** Sets a queued job's priority; false if the job is not queued. */
    boolean priority(String id, int priority);

    /** running -> queued without counting an attempt (a clean shutdown hands its work back). */
    void requeue(String id);

    /**
     * After a crash: jobs left running by another owner, or whose lease ran out, go back to the
     * queue with attempts + 1; a job already interrupted {@code poisonAfter - 1} times fails instead,
     * so a job that kills the server cannot do it at every start. Returns how many of each.
     */
    Recovery recover(String owner, long now, int poisonAfter);

    record Recovery(int requeued, int failed) {}

    /** Number of jobs in each state. */
    Map<JobState, Long> counts();

    /** Enqueue time of the oldest queued job, or 0. */
    long oldestQueued();

    /** The cached result for a key: its file's hash and size; marks it used now. */
    Optional<CacheEntry> cacheGet(String key, long now);

    void cachePut(CacheEntry e);

    /** Least recently used entries to drop so that the rest total at most maxBytes; they are removed from the index. */
    List<CacheEntry> cacheEvict(long maxBytes);

    record CacheEntry(String key, String resultHash, long bytes, long lastUsed) {}

    boolean paused();

    void paused(boolean on);

    @Override
    void close();
}
