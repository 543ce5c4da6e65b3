package dev.headroom.server;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.nio.file.Path;

/**
 * Everything {@code headroom serve} was told.
 *
 * @param devices     the devices jobs run on, each with its residency manager (the server closes them when it stops)
 * @param models      names the server knows beside {@code default} and DATA/models/
 * @param maxUpload   bytes an upload may have
 * @param maxPixels   pixels an image may have, read from its header before it is decoded
 * @param cacheBytes  the result cache's size (0: no cache)
 * @param jobTimeout  how long a job may run before it is stopped at its next tile
 * @param grace       how long SIGTERM waits for running jobs before handing them back to the queue
 * @param fleet       the job store and what servers sharing it need
 */
public record ServeConfig(String host, int port, Path data, List<DeviceSlot> devices, long maxUpload, long maxPixels,
                          long cacheBytes, boolean auth, Duration jobTimeout, Duration grace, Map<String, Path> models, Fleet fleet) {

    /**
     * @param store        null: SQLite in DATA; else {@code postgresql://USER@HOST:PORT/DB}, a queue shared by a fleet
     * @param passwordFile the store's password in a file (else PGPASSWORD, else ~/.pgpass); never on the command line
     * @param shared       a folder every server of a fleet mounts, for uploads, results and the result cache (null: in DATA)
     * @param node         this server's name in the node registry
     * @param lease        how long a claimed job stays this server's without a heartbeat renewing it
     */
    public record Fleet(String store, Path passwordFile, Path shared, String node, Duration lease) {
        public static Fleet single(String node) {
            return new Fleet(null, null, null, node, Duration.ofSeconds(60));
        }
    }
}
