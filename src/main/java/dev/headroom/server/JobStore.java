package dev.headroom.server;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;

/**
 * The durable queue: jobs, the result cache's index and the server's settings. A job accepted by
 * {@link #insert} is never lost; every change of state is one atomic statement guarded by the state
 * it leaves (queued -> running only from queued, and so on), so a cancel racing with an admission
 * has exactly one winner.
 *
 * <p>Two implementations with the same numbered schema migrations: SQLite for one machine
 * ({@link SqliteJobStore}) and PostgreSQL for a fleet of servers sharing one queue
 * ({@link PostgresJobStore}), which claims with {@code SELECT ... FOR UPDATE SKIP LOCKED}. A running
 * job belongs to one {@code owner} (a server process) under a lease that the owner renews; every
 * change a running job's owner makes is conditional on still being its owner, so once
 * {@link #recover} has handed an expired lease's job back to the queue, the old owner can no longer
 * finish it: a result is written once.
 */
public interface JobStore extends AutoCloseable {

    /** Stores a new queued (or, for a cache hit, already succeeded) job; with an idempotency key already used, returns that job instead. */
    Job insert(Job job);

    Optional<Job> get(String id);

    /** Jobs in submission order after the one numbered {@code afterSeq} (0: from the start), optionally of one state. */
    List<Job> list(JobState state, long afterSeq, int limit);

    /** Queued jobs, highest priority first, then oldest: candidates for the scheduler. */
    List<Job> queued(int limit);

    /**
     * queued -> running for {@code owner}, under a lease of {@code leaseMillis}, with an execution
     * record for this run; false if it was not queued (cancelled, or claimed elsewhere).
     */
    boolean claim(String id, Owner owner, long leaseMillis, long now);

    /**
     * Claims the job {@code pick} chooses among the first queued candidates in priority-with-aging
     * order, or nothing when {@code pick} chooses none (the head does not fit yet). A store shared by
     * several servers hands each caller candidates no other caller is claiming at that moment.
     */
    default Optional<Job> claimNext(Owner owner, long leaseMillis, long now, Function<List<Job>, Optional<String>> pick) {
        Optional<String> id = pick.apply(queued(1000));
        if (id.isEmpty() || !claim(id.get(), owner, leaseMillis, now)) return Optional.empty();
        return get(id.get());
    }

    /**
     * Extends the leases of the jobs {@code ids} that {@code owner} runs; returns those it still
     * holds, each with whether a cancel reached it. A job missing from the answer was taken from
     * this owner (its lease ran out): the owner must abandon it. Only jobs the owner still runs are
     * named, so one it abandoned keeps no lease alive and goes back to the queue when that runs out.
     */
    Map<String, Boolean> renew(Owner owner, java.util.Collection<String> ids, long leaseMillis, long now);

    /** The store cannot be reached now (a fleet's database is away); the caller may retry. */
    final class Unavailable extends IllegalStateException {
        public Unavailable(String message, Throwable cause) {
            super(message, cause);
        }
    }

    void progress(String id, int done, int total);

    /** running -> a final state for its owner, with its result or error; false if it was not running, or not this owner's. */
    boolean finish(String id, Owner owner, JobState to, String error, String resultHash, long resultBytes, long now);

    /**
     * Cancels: a queued job becomes cancelled at once; a running one is marked and stops at its
     * next tile. Returns the state after the call, or empty for an unknown id.
     */
    Optional<JobState> cancel(String id, long now);

    /** Sets a queued job's priority; false if the job is not queued. */
    boolean priority(String id, int priority);

    /** running -> queued without counting an attempt (a clean shutdown hands its work back). */
    void requeue(String id, Owner owner);

    /**
     * After a crash: running jobs whose owner is gone go back to the queue with attempts + 1; a job
     * already interrupted {@code poisonAfter - 1} times fails instead, so a job that kills a server
     * cannot do it at every start. On one machine every owner but {@code owner} is gone (and any
     * lease that ran out); in a fleet, only owners whose lease ran out. Their execution records end
     * as {@code lost}. Returns how many of each.
     */
    Recovery recover(Owner owner, long now, int poisonAfter);

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

    /** Whether other servers share this store (a fleet): then a job may run, and its events happen, on another server. */
    default boolean shared() {
        return false;
    }

    /** Records that this server is alive, with what it has (upserted by node name). */
    void heartbeat(Node node);

    /** The servers that have registered, most recent heartbeat first. */
    List<Node> nodes();

    /**
     * A server process: {@code node} is its name (stable across restarts), {@code id} this run of it
     * (unique), so a restarted server never mistakes its previous life's jobs for its own.
     */
    record Owner(String node, String id) {
        public Owner {
            if (node == null || node.isBlank() || id == null || id.isBlank()) throw new IllegalArgumentException("owner needs a node name and an id");
        }

        @Override
        public String toString() {
            return node + "/" + id;
        }
    }

    /**
     * A registered server: devices and resident models as JSON arrays; {@code freeSlots} jobs it
     * could start now; {@code ageMillis} since its last heartbeat by the store's clock.
     */
    record Node(String name, String owner, String url, String devices, String models, int running, int freeSlots, long started,
                long ageMillis) {}

    boolean paused();

    void paused(boolean on);

    @Override
    void close();
}
