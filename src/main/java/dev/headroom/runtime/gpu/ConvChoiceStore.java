package dev.headroom.runtime.gpu;

import dev.headroom.runtime.CacheDir;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * How each convolution shape runs, remembered across processes, so a shape is timed once per
 * machine and not once per process: on the H100 timing the candidates took about 40 s of an 89 s
 * 4096x4096 job, and seconds per model in every test run.
 *
 * <p>One file per fingerprint, {@code <cache>/conv-choices/<sha256 of fingerprint>.tsv}. The
 * fingerprint names all that may change the answer: device name and compute capability, driver
 * and cuDNN versions, storage precision, the strategies chosen among, and {@link #FORMAT}. The file is a header line
 * {@code headroom-conv-choices <FORMAT> <fingerprint>}, then one line per choice:
 * <pre>
 *   key TAB way TAB a TAB b TAB micros
 * </pre>
 * where {@code way} is FUSED or GRAPH (a, b: the plan's heuristics mode and position; micros NaN for
 * cuDNN's untimed first choice, which is still timed once it repeats: format 2), GEMM or
 * LEGACY (a, b unused), or ALGO (a legacy-API algorithm for the key; a: algorithm). Lines are appended as
 * choices are made, each in one write, so processes sharing the cache do not tear each other's
 * lines; a later line for a key wins; a line that does not parse is skipped. A cache that cannot be
 * read or written only costs the timing again.
 *
 * <p>One per file per process while any device holds it ({@link #acquire}, {@link #release}): every
 * session of every device of this kind shares it, so a shape is timed once in the process, not once
 * per session and device. That is the choice all of them run ({@link #turn}): before it, each of a
 * server's sessions timed its shapes itself (2 H200s, 8 sessions: 38 s of timing summed over 360
 * jobs against 12 s on one), and could keep another winner than its neighbours, whose rounding then
 * differed (up to 3 LSB in 13 of 67 RRDBNet outputs). A store released by every device is read
 * again from the file by the next that opens it, as a new process would.
 */
final class ConvChoiceStore {
    /** Bumped when a key's meaning or the line format changes, so old files are not read. */
    static final int FORMAT = 2;

    /** One remembered choice. */
    record Entry(String way, int a, int b, double micros) {}

    /** What a session whose shape still runs on an untimed choice does now ({@link #turn}). */
    enum Turn {
        /** A timed choice is remembered: take it, time nothing. */
        ADOPT,
        /** Nobody has timed it and the caller may: it is now the caller's to time, until {@link #timed}. */
        TIME,
        /** Another session is timing it now, or the caller may not time yet: keep the untimed choice for now. */
        WAIT
    }

    /** Stores held by open devices, by file. */
    private static final HeldByDevices<ConvChoiceStore> HELD = new HeldByDevices<>();

    private final Path file;
    private final String header;
    private final Map<String, Entry> entries = new HashMap<>();
    /** Keys a session is timing now ({@link Turn#TIME} given, {@link #timed} not yet called). */
    private final java.util.Set<String> timing = new java.util.HashSet<>();

    private ConvChoiceStore(Path file, String header) {
        this.file = file;
        this.header = header;
    }

    /** The store for {@code fingerprint} under {@code dir}, read now; a missing or unreadable file is an empty store. */
    static ConvChoiceStore open(Path dir, String fingerprint) {
        String header = header(fingerprint);
        ConvChoiceStore s = new ConvChoiceStore(file(dir, header), header);
        s.read();
        return s;
    }

    private static String header(String fingerprint) {
        return "headroom-conv-choices " + FORMAT + " " + fingerprint.replace('\n', ' ');
    }

    private static Path file(Path dir, String header) {
        return dir.resolve(CacheDir.sha256(header) + ".tsv");
    }

    /** The process's store for {@code fingerprint} under {@code dir}, shared while held; {@link #release} it when the holder closes. */
    static ConvChoiceStore acquire(Path dir, String fingerprint) {
        return HELD.hold(file(dir, header(fingerprint)), f -> open(dir, fingerprint));   // read once, by the first device to hold it
    }

    /** One holder fewer; the last one's release forgets the store (the file keeps it). */
    static void release(ConvChoiceStore s) {
        HELD.release(s.file, s);
    }

    /**
     * For a shape that has run untimed long enough to be timed: {@link Turn#ADOPT} when a timed choice
     * is remembered (by any session, on any device sharing this store), else {@link Turn#TIME} to one
     * caller at a time that {@code mayTime}, which must then call {@link #timed} whatever happens;
     * {@link Turn#WAIT} to the others. So each key is timed once, and a timed choice is never timed
     * again and replaced while jobs run on it.
     */
    synchronized Turn turn(String key, boolean mayTime) {
        Entry e = entries.get(key);
        if (e != null && !Double.isNaN(e.micros())) return Turn.ADOPT;
        if (!mayTime || timing.contains(key)) return Turn.WAIT;
        timing.add(key);
        return Turn.TIME;
    }

    /** The caller given {@link Turn#TIME} for {@code key} is done (its choice {@link #put}, or its timing failed). */
    synchronized void timed(String key) {
        timing.remove(key);
    }

    private void read() {
        List<String> lines;
        try {
            if (!Files.isRegularFile(file)) return;
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return;
        }
        if (lines.isEmpty() || !lines.getFirst().equals(header)) return;
        for (String line : lines.subList(1, lines.size())) {
            String[] f = line.split("\t", -1);
            if (f.length != 5) continue;
            try {
                entries.put(f[0], new Entry(f[1], Integer.parseInt(f[2]), Integer.parseInt(f[3]), Double.parseDouble(f[4])));
            } catch (NumberFormatException e) {
                // a torn or foreign line: that key is timed again
            }
        }
    }

    synchronized Entry get(String key) {
        return entries.get(key);
    }

    synchronized int size() {
        return entries.size();
    }

    /** Remembers {@code e} for {@code key}, here and (when this store has a file) on disk. */
    synchronized void put(String key, Entry e) {
        if (key.indexOf('\t') >= 0 || key.indexOf('\n') >= 0) throw new IllegalArgumentException("choice key with a tab or newline: " + key);
        entries.put(key, e);
        String line = key + "\t" + e.way() + "\t" + e.a() + "\t" + e.b() + "\t" + e.micros() + "\n";
        try {
            Files.createDirectories(file.getParent());
            if (!Files.isRegularFile(file) || Files.size(file) == 0) {
                line = header + "\n" + line;
            }
            Files.write(file, line.getBytes(StandardCharsets.UTF_8), StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException ignored) {
            // not remembered across processes this time; this process still has it
        }
    }

    Path file() {
        return file;
    }
}
