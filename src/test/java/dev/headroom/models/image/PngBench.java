package dev.headroom.models.image;

import dev.headroom.core.image.FloatImage;
import dev.headroom.core.image.Resample;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.zip.Adler32;
import java.util.zip.CRC32;
import java.util.zip.Deflater;

/**
 * CPU per image of the PNG encoder's parts: the old code (PngFiltersReference: a pass per filter,
 * scalar sample conversion), the new one-pass scalar code (what a JVM runs until PngWarmup switches)
 * and the Vector API code, in one run on the same inputs (scripts/bench/png runs it). Each part runs
 * on one thread, piece by piece as PngWriter cuts an image (about 1 MiB of scanlines, deflate level 1
 * with a sync flush), timed with that thread's CPU clock: float-to-sample conversion, filtering
 * (choice and output, PngFilters.best), Adler-32, Deflater. The three alternate within a round;
 * after WARM unprinted rounds, the median of REPS rounds is printed per part with the ratios. All
 * three must give the same filtered bytes and deflate stream (checked every round; the bench stops
 * if not). Also prints the whole streamed PngWriter on the vector code (all cores): the process's
 * CPU and wall time.
 *
 * <p>{@code PngBench cold [size]} instead encodes three noise images through PngWriter in this fresh
 * JVM, as it decides (scalar code until PngWarmup's count, unless -Dpng.vectors=true forces the
 * vector code from the first row), and prints each one's process CPU: the first image's cost.
 *
 * <p>Images, SIZE x SIZE RGB: "noise" is (SIZE/4)^2 uniform noise upscaled bicubic x4 plus Gaussian
 * noise of sigma 0.01 (what an upscaler makes of a noisy input); "photo" is PHOTO upscaled bicubic
 * to SIZE plus the same noise.
 *
 * <p>Usage: PngBench [size=4096] [reps=5] [bits=8] [photo=examples/astronaut.png] | PngBench cold [size=4096]
 */
public final class PngBench {
    private static final int WARM = 2;
    private static final String[] PARTS = {"sample", "filter", "adler32", "deflate"};
    private static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();

    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].equals("cold")) {
            cold(args.length > 1 ? Integer.parseInt(args[1]) : 4096);
            return;
        }
        int size = args.length > 0 ? Integer.parseInt(args[0]) : 4096;
        int reps = args.length > 1 ? Integer.parseInt(args[1]) : 5;
        int bits = args.length > 2 ? Integer.parseInt(args[2]) : 8;
        Path photo = Path.of(args.length > 3 ? args[3] : "examples/astronaut.png");
        Random r = new Random(1);
        FloatImage src = ImageFiles.read(photo, Long.MAX_VALUE);
        if (src.channels() != 3) src = src.channels(0, 3);
        System.out.printf("{\"size\": %d, \"bits\": %d, \"reps\": %d, \"cores\": %d, \"vector_bits\": %d}%n",
                size, bits, reps, Runtime.getRuntime().availableProcessors(), jdk.incubator.vector.ByteVector.SPECIES_PREFERRED.vectorBitSize());
        bench("noise", noise(size, bits, r), bits, reps);
        bench("photo", noisy(Resample.bicubic(src, size, size), r), bits, reps);
    }

    /** (size/4)^2 uniform noise upscaled bicubic x4, plus noise. */
    private static FloatImage noise(int size, int bits, Random r) {
        FloatImage small = FloatImage.blank(Math.max(1, size / 4), Math.max(1, size / 4), 3, bits);
        for (int i = 0; i < small.data().length; i++) small.data()[i] = r.nextFloat();
        return noisy(Resample.bicubic(small, size, size), r);
    }

    private static void cold(int size) throws Exception {
        if (Boolean.getBoolean("png.vectors")) PngWarmup.ready = true;
        FloatImage img = noise(size, 8, new Random(1));
        Path dir = Files.createTempDirectory("png-bench"), file = dir.resolve("c.png");
        for (int k = 0; k < 3; k++) {
            long c0 = processCpu(), w0 = System.nanoTime();
            boolean vectors = PngWarmup.ready();
            write(img, 8, file);
            System.out.printf("{\"cold_image\": %d, \"size\": %d, \"vectors_at_start\": %b, \"process_cpu_ms\": %.0f, \"wall_ms\": %.0f}%n",
                    k, size, vectors, (processCpu() - c0) / 1e6, (System.nanoTime() - w0) / 1e6);
        }
        Files.delete(file);
        Files.delete(dir);
    }

    private static FloatImage noisy(FloatImage img, Random r) {
        float[] d = img.data();
        for (int i = 0; i < d.length; i++) d[i] += (float) (r.nextGaussian() * 0.01);
        return img;
    }

    private static final String[] MODES = {"old", "scalar", "vector"};

    private static void bench(String name, FloatImage img, int bits, int reps) throws Exception {
        long[][][] runs = new long[MODES.length][reps][];
        long[] writerCpu = new long[reps], writerWall = new long[reps];
        Path dir = Files.createTempDirectory("png-bench");
        Path file = dir.resolve("w.png");
        for (int rep = -WARM; rep < reps; rep++) {
            Result[] got = new Result[MODES.length];
            for (int m = 0; m < MODES.length; m++) {
                got[m] = encode(img, bits, m);
                if (got[m].crc != got[0].crc || got[m].filteredCrc != got[0].filteredCrc || got[m].bytes != got[0].bytes) {
                    throw new IllegalStateException(name + ": the " + MODES[m] + " code's bytes differ from the old's (filtered crc " + got[0].filteredCrc
                            + " vs " + got[m].filteredCrc + ", deflated crc " + got[0].crc + " vs " + got[m].crc + ", " + got[0].bytes + " vs " + got[m].bytes + " bytes)");
                }
                if (rep >= 0) runs[m][rep] = got[m].nanos;
            }
            PngWarmup.ready = true;
            long c0 = processCpu(), w0 = System.nanoTime();
            write(img, bits, file);
            long c1 = processCpu(), w1 = System.nanoTime();
            if (rep >= 0) {
                writerCpu[rep] = c1 - c0;
                writerWall[rep] = w1 - w0;
            }
        }
        long bytes = Files.size(file);
        Files.delete(file);
        Files.delete(dir);
        for (int p = 0; p <= PARTS.length; p++) {
            double o = median(runs[0], p), s = median(runs[1], p), v = median(runs[2], p);
            System.out.printf("{\"image\": \"%s\", \"part\": \"%s\", \"old_cpu_ms\": %.1f, \"scalar_cpu_ms\": %.1f, \"vector_cpu_ms\": %.1f, "
                            + "\"old_over_scalar\": %.2f, \"old_over_vector\": %.2f}%n",
                    name, p < PARTS.length ? PARTS[p] : "total", o, s, v, o / s, o / v);
        }
        System.out.printf("{\"image\": \"%s\", \"part\": \"identical\", \"value\": true, \"png_bytes\": %d, "
                        + "\"writer_vector_process_cpu_ms\": %.1f, \"writer_vector_wall_ms\": %.1f}%n",
                name, bytes, median(writerCpu), median(writerWall));
    }

    /** CPU ns per part (PARTS, then their total) and checksums of the filtered and deflated bytes. */
    private record Result(long[] nanos, long filteredCrc, long crc, long bytes) {}

    /** One image through the parts as PngWriter runs them on one piece, piece after piece, on this thread. */
    private static Result encode(FloatImage img, int bits, int mode) {
        boolean old = mode == 0;
        PngWarmup.ready = mode == 2;
        int w = img.width(), h = img.height(), ch = img.channels(), bytes = bits / 8;
        int values = w * ch, rowBytes = values * bytes, bpp = ch * bytes;
        int per = Math.max(1, PngWriter.PIECE_BYTES / rowBytes);
        byte[] raw = new byte[(per + 1) * rowBytes], filtered = new byte[per * (rowBytes + 1)];
        byte[] out = new byte[filtered.length + filtered.length / 64 + 1024];
        float[] data = img.data();
        long[] nanos = new long[PARTS.length + 1];
        CRC32 crc = new CRC32(), filteredCrc = new CRC32();
        long total = 0;
        for (int a = 0; a < h; a += per) {
            int b = Math.min(h, a + per), rows = b - a, length = rows * (rowBytes + 1);
            long t0 = cpu();
            for (int y = Math.max(0, a - 1); y < b; y++) {
                int at = (y - a + 1) * rowBytes;
                if (old) PngFiltersReference.sample(data, y * values, values, bytes, raw, at);
                else SampleBytes.round(data, y * values, values, bytes, raw, at);
            }
            long t1 = cpu();
            for (int r = 0; r < rows; r++) {
                int cur = (r + 1) * rowBytes, prev = a + r > 0 ? r * rowBytes : -1;
                if (old) PngFiltersReference.best(raw, cur, prev, rowBytes, bpp, false, filtered, r * (rowBytes + 1));
                else PngFilters.best(raw, cur, prev, rowBytes, bpp, false, filtered, r * (rowBytes + 1));
            }
            long t2 = cpu();
            Adler32 adler = new Adler32();
            adler.update(filtered, 0, length);
            long t3 = cpu();
            Deflater d = new Deflater(1, true);
            d.setInput(filtered, 0, length);
            int len = d.deflate(out, 0, out.length, Deflater.SYNC_FLUSH);
            d.end();
            long t4 = cpu();
            if (len == out.length) throw new IllegalStateException("deflate output buffer too small");
            nanos[0] += t1 - t0;
            nanos[1] += t2 - t1;
            nanos[2] += t3 - t2;
            nanos[3] += t4 - t3;
            filteredCrc.update(filtered, 0, length);
            crc.update(out, 0, len);
            crc.update((int) adler.getValue());
            total += len;
        }
        nanos[PARTS.length] = Arrays.stream(nanos).sum();
        return new Result(nanos, filteredCrc.getValue(), crc.getValue(), total);
    }

    /** The streamed writer as upscale uses it: bands of 512 rows. */
    private static void write(FloatImage img, int bits, Path out) throws Exception {
        int rowLength = img.width() * img.channels();
        try (ImageWriter wr = ImageWriter.open(out, Encoding.png(), img.width(), img.height(), img.channels(), bits)) {
            for (int y = 0; y < img.height(); y += 512) wr.rows(img.data(), y * rowLength, Math.min(512, img.height() - y));
            wr.finish();
        }
    }

    private static long cpu() {
        return THREADS.getCurrentThreadCpuTime();
    }

    private static long processCpu() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();
    }

    private static double median(long[][] runs, int part) {
        return median(Arrays.stream(runs).mapToLong(x -> x[part]).toArray());
    }

    private static double median(long[] v) {
        long[] s = v.clone();
        Arrays.sort(s);
        return (s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2.0) / 1e6;
    }
}
