package dev.headroom.cli;

import dev.headroom.core.Sizes;
import dev.headroom.cuda.CudaException;
import dev.headroom.cuda.CudaUnavailable;
import dev.headroom.runtime.Residency;
import dev.headroom.runtime.cpu.CpuDevice;
import dev.headroom.runtime.gpu.CudaDevice;
import dev.headroom.runtime.memory.MemoryOptions;
import dev.headroom.server.DataDir;
import dev.headroom.server.DeviceSlot;
import dev.headroom.server.HeadroomServer;
import dev.headroom.server.ServeConfig;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "serve", mixinStandardHelpOptions = true,
        description = "Runs a job server: a durable queue (SQLite in DATA), admission by planned memory, priorities, a result cache and metrics, over HTTP.")
final class ServeCommand implements Callable<Integer> {

    @Option(names = "--host", defaultValue = "127.0.0.1", description = "Address to listen on (default: ${DEFAULT-VALUE})")
    String host;

    @Option(names = "--port", defaultValue = "8188", description = "Port (default: ${DEFAULT-VALUE}; 0 picks a free one)")
    int port;

    @Option(names = "--data", paramLabel = "DIR", description = "Job store, uploads, results and token (default: ~/.local/share/headroom)")
    Path data;

    @Option(names = "--device", defaultValue = "auto", paramLabel = "auto|cpu|cuda|all|0,1",
            description = "Devices to run jobs on (default: ${DEFAULT-VALUE}: every GPU, else the CPU)")
    String device;

    @Option(names = "--vram-budget", paramLabel = "SIZE", description = "Behave as if each device had only this much memory, e.g. 12GiB")
    String budget;

    @Option(names = "--host-cache", paramLabel = "SIZE", defaultValue = "0",
            description = "Host memory per device (pinned on a GPU) for copies of models' weights, least recently used out first: reloading an evicted model is then a copy, not a file read (default: ${DEFAULT-VALUE}, none)")
    String hostCache;

    @Option(names = "--max-upload", paramLabel = "SIZE", defaultValue = "64MiB", description = "Largest upload (default: ${DEFAULT-VALUE})")
    String maxUpload;

    @Option(names = "--max-pixels", paramLabel = "N", defaultValue = "100000000", description = "Most pixels an image may have, read from its header (default: ${DEFAULT-VALUE})")
    long maxPixels;

    @Option(names = "--cache", paramLabel = "SIZE", defaultValue = "1GiB", description = "Result cache size, least recently used out first; 0 for none (default: ${DEFAULT-VALUE})")
    String cache;

    @Option(names = "--no-auth", description = "No bearer token (only with a loopback --host)")
    boolean noAuth;

    @Option(names = "--max-concurrent", paramLabel = "N", description = "Jobs each device runs at once, each in a session of its own (default: 2)")
    Integer maxConcurrent;

    @Option(names = "--job-timeout", paramLabel = "SECONDS", defaultValue = "3600", description = "A job running longer stops at its next tile and fails (default: ${DEFAULT-VALUE}; 0: none)")
    long jobTimeout;

    @Option(names = "--grace", paramLabel = "SECONDS", defaultValue = "30", description = "On SIGTERM, how long running jobs may finish before going back to the queue (default: ${DEFAULT-VALUE})")
    long grace;

    @Option(names = "--model", paramLabel = "NAME=FILE", description = "A model clients may name (repeatable): NAME=FILE, or NAME=synthetic:ARCH (seeded random weights, as upscale --synthetic); files in DATA/models are known by their name too")
    List<String> models = new ArrayList<>();

    @Option(names = "--store", paramLabel = "postgresql://USER@HOST:PORT/DB",
            description = "A PostgreSQL job store shared by several servers (a fleet); the password comes from PGPASSWORD, --store-password-file or ~/.pgpass (default: SQLite in DATA)")
    String store;

    @Option(names = "--store-password-file", paramLabel = "FILE", description = "A file holding the --store password")
    Path storePasswordFile;

    @Option(names = "--results", paramLabel = "DIR", description = "A folder every server of a fleet mounts, for uploads, results and the result cache (needed with --store; default: in DATA)")
    Path results;

    @Option(names = "--node", paramLabel = "NAME", description = "This server's name in the node registry (default: HOST:PORT of this machine)")
    String node;

    @Option(names = "--lease", paramLabel = "SECONDS", defaultValue = "30", description = "How long a claimed job stays this server's without a heartbeat (every third of it) renewing it; after that another server of the fleet takes it (default: ${DEFAULT-VALUE})")
    double lease;

    private ServeConfig.Fleet fleet() {
        if (store != null) {
            try {
                dev.headroom.server.PostgresTarget.parse(store);
            } catch (IllegalArgumentException e) {
                throw new Main.UsageError(e.getMessage());
            }
            if (results == null) throw new Main.UsageError("--store: servers sharing a queue need a folder they all mount for uploads and results; give --results DIR");
        }
        if (storePasswordFile != null && !java.nio.file.Files.isReadable(storePasswordFile)) {
            throw new Main.UsageError("--store-password-file " + storePasswordFile + " cannot be read");
        }
        if (!(lease >= 0.3 && lease <= 86_400)) throw new Main.UsageError("--lease must be from 0.3 to 86400 seconds");
        String name = node;
        if (name == null) {
            try {
                name = InetAddress.getLocalHost().getHostName() + ":" + (port != 0 ? port : ProcessHandle.current().pid());
            } catch (UnknownHostException e) {
                name = "headroom-" + ProcessHandle.current().pid();
            }
        }
        if (name.isBlank() || name.length() > 200) throw new Main.UsageError("--node must be 1 to 200 characters");
        return new ServeConfig.Fleet(store, storePasswordFile, results, name, Duration.ofMillis(Math.round(lease * 1000)));
    }
    @picocli.CommandLine.Mixin
    AlertOptions alerts = new AlertOptions();

    /** Events each device's memory trace keeps, from which the dashboard draws each job's memory report. */
    static final int TRACE_EVENTS = 200_000;

    @Override
    public Integer call() throws Exception {
        boolean loopback;
        try {
            loopback = InetAddress.getByName(host).isLoopbackAddress();
        } catch (UnknownHostException e) {
            throw new Main.UsageError("--host " + host + ": unknown address");
        }
        if (noAuth && !loopback) throw new Main.UsageError("--no-auth is allowed only with a loopback --host (127.0.0.1 or ::1), not " + host);
        if (port < 0 || port > 65535) throw new Main.UsageError("--port " + port + " is not a port number");
        if (maxPixels < 1) throw new Main.UsageError("--max-pixels must be at least 1");
        if (jobTimeout < 0 || grace < 0) throw new Main.UsageError("--job-timeout and --grace must be 0 or more seconds");
        if (maxConcurrent != null && maxConcurrent < 1) throw new Main.UsageError("--max-concurrent must be at least 1");
        var alertConfig = alerts.config();
        Map<String, Path> named = new LinkedHashMap<>();
        for (String m : models) {
            int eq = m.indexOf('=');
            if (eq < 1 || eq == m.length() - 1) throw new Main.UsageError("--model " + m + ": write it as NAME=FILE");
            if (m.substring(0, eq).indexOf(dev.headroom.server.ModelCatalog.VARIANT) >= 0 || m.substring(0, eq).contains("/")) {
                throw new Main.UsageError("--model " + m + ": a model's name may not contain '@' or '/' (NAME@FORMAT names its compact-weights variant)");
            }
            String source = m.substring(eq + 1);
            if (source.startsWith(dev.headroom.server.ModelCatalog.SYNTHETIC)) {
                named.put(m.substring(0, eq), Path.of(source));
                continue;
            }
            Path f = Path.of(source);
            if (!java.nio.file.Files.isRegularFile(f)) throw new Main.UsageError("--model " + m + ": " + f + " is not a file");
            named.put(m.substring(0, eq), f.toAbsolutePath());
        }
        ServeConfig cfg = new ServeConfig(host, port, data != null ? data : DataDir.platformDefault(), devices(), size("--max-upload", maxUpload),
                maxPixels, size("--cache", cache), !noAuth, Duration.ofSeconds(jobTimeout), Duration.ofSeconds(grace), named, fleet());
        HeadroomServer server = new HeadroomServer(cfg, dev.headroom.server.TaskRunner.standard());
        server.alerts(alertConfig);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.stop();
            stopped.countDown();
        }, "headroom-shutdown"));
        var r = server.start();
        System.out.println("headroom serve: " + server.url() + " (token: " + server.tokenFile() + ")");
        if (r.requeued() + r.failed() > 0) {
            System.err.println("headroom serve: after an unclean stop, " + r.requeued() + " jobs went back to the queue and " + r.failed()
                    + " failed (interrupted twice)");
        }
        System.out.flush();
        stopped.await();
        return 0;
    }

    private static long size(String option, String v) {
        if (v.strip().equals("0")) return 0;
        try {
            return Sizes.parseOption(v);
        } catch (IllegalArgumentException e) {
            throw new Main.UsageError(option + ": " + e.getMessage());
        }
    }

    /** One device per --device entry, each with a residency manager (model weights loaded once and shared by its jobs). */
    private List<DeviceSlot> devices() {
        long bytes = budget == null ? 0 : size("--vram-budget", budget);
        if (budget != null && bytes < (16L << 20)) throw new Main.UsageError("--vram-budget " + budget + " is too small to run anything; use at least 16MiB");
        MemoryOptions options = new MemoryOptions(bytes, MemoryOptions.DEFAULT.expandable(), TRACE_EVENTS, MemoryOptions.DEFAULT.thresholds());
        int running = maxConcurrent != null ? maxConcurrent : 2;
        long hostCacheBytes = size("--host-cache", hostCache);
        List<DeviceSlot> out = new ArrayList<>();
        List<Integer> gpus = gpus();
        if (gpus.isEmpty()) {
            CpuDevice cpu = new CpuDevice(options);
            out.add(new DeviceSlot(cpu, new Residency(cpu, hostCacheBytes), running));
        }
        for (int i : gpus) {
            CudaDevice gpu = CudaDevice.open(i, options);
            out.add(new DeviceSlot(gpu, new Residency(gpu, hostCacheBytes), running));
        }
        return out;
    }

    /** The GPUs --device names (empty: the CPU). */
    private List<Integer> gpus() {
        String d = device.strip();
        if (d.equals("cpu")) return List.of();
        int count;
        try {
            count = dev.headroom.cuda.Driver.get().deviceCount();
        } catch (CudaUnavailable | CudaException e) {
            if (d.equals("auto")) return List.of();
            throw new Main.UsageError("--device " + d + ": " + e.getMessage() + "; use --device cpu");
        }
        if (d.equals("auto") || d.equals("all")) {
            List<Integer> all = new ArrayList<>();
            for (int i = 0; i < count; i++) all.add(i);
            return all;
        }
        if (d.equals("cuda")) {
            if (count == 0) throw new Main.UsageError("--device cuda: no GPU found; use --device cpu");
            return List.of(0);
        }
        List<Integer> some = new ArrayList<>();
        for (String s : d.split(",")) {
            try {
                int i = Integer.parseInt(s.strip());
                if (i < 0 || i >= count) throw new Main.UsageError("--device " + d + ": there are " + count + " GPUs (0 to " + (count - 1) + ")");
                some.add(i);
            } catch (NumberFormatException e) {
                throw new Main.UsageError("--device " + d + ": use auto, cpu, cuda, all, or GPU numbers like 0,1");
            }
        }
        return some;
    }
}
