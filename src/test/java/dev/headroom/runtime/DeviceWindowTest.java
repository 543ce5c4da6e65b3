package dev.headroom.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.Weights;
import dev.headroom.core.graph.Graph;
import dev.headroom.core.image.FloatImage;
import dev.headroom.core.image.SampleSink;
import dev.headroom.runtime.cpu.CpuOps;
import dev.headroom.testing.Randoms;
import dev.headroom.testing.SampleCollector;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The upscaler's path for a backend that blends on the device ({@link Ops#outputWindow}): tiles
 * added into the backend's window where they ran, rows sent to a {@link SampleSink} as samples.
 * Here the "device" is the CPU with a ring window in Java that does what window_kernels.cu does
 * (a ring of rows indexed by row % capacity, products in the host's order, samples rounded as
 * the writers round them), so the orchestration (which rows, when, cropped how) is checked
 * against the host's blend without a GPU; GpuWindowTest checks the CUDA kernels the same way.
 */
class DeviceWindowTest {
    private final Random rnd = new Random(Randoms.seed());

    /** window_kernels.cu in Java: an fp32 ring of rows; samples leave in bands of at most {@code bandRows}. */
    static final class RingWindow implements OutputWindow {
        final int width, capacity, channels, bandRows;
        final float[] acc;
        final List<int[]> emitted = new ArrayList<>();
        int grayEmits;
        boolean closed;

        RingWindow(int width, int capacity, int channels, int bandRows) {
            this.width = width;
            this.capacity = capacity;
            this.channels = channels;
            this.bandRows = bandRows;
            this.acc = new float[width * capacity * channels];
        }

        @Override
        public void add(Tensor y, int b, int rows, int cols, float[] wy, float[] wx, float scale, int row, int col) {
            for (int py = 0; py < rows; py++) {
                int slot = (row + py) % capacity;
                for (int px = 0; px < cols; px++) {
                    float w = wy[py] * wx[px];
                    for (int c = 0; c < channels; c++) {
                        float v = y.data[y.index(b, py, px) + c] * scale;
                        acc[(slot * width + col + px) * channels + c] += w * v;
                    }
                }
            }
        }

        @Override
        public void emit(int from, int rows, boolean gray, SampleSink sink) {
            int bytes = sink.sampleBits() / 8, k = gray ? 1 : channels;
            float max = bytes == 1 ? 255f : 65535f;
            emitted.add(new int[] {from, rows});
            if (gray) grayEmits++;
            for (int done = 0; done < rows; ) {
                int n = Math.min(bandRows, rows - done);
                byte[] band = new byte[n * width * k * bytes + 3];   // at an offset, to check the sink reads from it
                for (int r = 0; r < n; r++) {
                    int slot = (from + done + r) % capacity;
                    for (int i = 0; i < width * k; i++) {
                        int at = slot * width * channels + i * channels / k;
                        float v = acc[at];
                        acc[at] = 0f;
                        if (gray) {
                            v = (v + acc[at + 1] + acc[at + 2]) / 3f;
                            acc[at + 1] = acc[at + 2] = 0f;
                        }
                        int q = Math.round(Math.clamp(v, 0f, 1f) * max);
                        int o = 3 + (r * width * k + i) * bytes;
                        if (bytes == 1) band[o] = (byte) q;
                        else {
                            band[o] = (byte) (q >>> 8);
                            band[o + 1] = (byte) q;
                        }
                    }
                }
                sink.sampleRows(band, 3, n);
                java.util.Arrays.fill(band, (byte) 0x5a);   // the sink must have taken its copy
                done += n;
            }
        }

        @Override
        public long waitNanos() {
            return 0;
        }

        @Override
        public void close() {
            closed = true;
        }
    }

    /** The CPU backend with {@code windows} as its output windows (a proxy: every other call goes to the CPU). */
    private static Ops withWindows(CpuOps cpu, List<RingWindow> windows, int bandRows) {
        return (Ops) Proxy.newProxyInstance(Ops.class.getClassLoader(), new Class<?>[] {Ops.class}, (proxy, m, args) -> {
            if (m.getName().equals("outputWindow")) {
                RingWindow w = new RingWindow((Integer) args[0], (Integer) args[1], (Integer) args[2], bandRows);
                windows.add(w);
                return w;
            }
            try {
                return m.invoke(cpu, args);
            } catch (InvocationTargetException e) {
                throw e.getCause();
            }
        });
    }

    @Test
    void samplesFromTheDeviceWindowEqualTheHostBlendsForOddSizesTilesAndBatches() {
        // the last two: a pixel-unshuffle model, whose tiles run padded and are cropped
        int[][] cases = {{61, 45, 20, 6, 1, 8}, {23, 17, 64, 8, 1, 16}, {37, 50, 13, 5, 3, 8}, {9, 31, 9, 0, 2, 16}, {40, 41, 16, 15, 4, 8},
                {37, 29, 13, 4, 2, 8}, {51, 20, 64, 0, 1, 16}};
        for (int[] k : cases) {
            Graph g = k == cases[5] || k == cases[6] ? TiledUpscalerTest.unshuffleGraph() : GraphRunnerTest.denseGraph();
            Weights w = GraphRunnerTest.randomWeights(g, rnd);
            String what = k[0] + "x" + k[1] + " tile " + k[2] + " overlap " + k[3] + " batch " + k[4] + " " + k[5] + " bit";
            FloatImage img = randomImage(k[0], k[1]);
            int rowValues = k[0] * g.scale() * 3;
            SampleCollector host = new SampleCollector(k[5], rowValues), device = new SampleCollector(k[5], rowValues);
            try (CpuOps cpu = new CpuOps(); GraphRunner runner = new GraphRunner(g, w, cpu)) {
                TiledUpscaler up = new TiledUpscaler(runner, 255f);
                up.batch(k[4]);
                up.upscale(img, k[2], k[3], null, host);
            }
            List<RingWindow> windows = new ArrayList<>();
            try (CpuOps cpu = new CpuOps(); GraphRunner runner = new GraphRunner(g, w, withWindows(cpu, windows, 1 + rnd.nextInt(7)))) {
                TiledUpscaler up = new TiledUpscaler(runner, 255f);
                up.batch(k[4]);
                up.upscale(img, k[2], k[3], null, device);
            }
            assertEquals(0, host.sampleBands, what + ": the CPU blends on the host");
            assertEquals(1, windows.size(), what + ": one device window");
            assertTrue(windows.getFirst().closed, what + ": closed");
            assertEquals(0, device.floatBands, what + ": no float rows from the device path");
            assertArrayEquals(host.bytes(), device.bytes(), what + ": the same samples bit for bit");
            int next = 0;
            for (int[] e : windows.getFirst().emitted) {
                assertEquals(next, e[0], what + ": rows in order, each once");
                next += e[1];
            }
            assertEquals(k[1] * g.scale(), next, what + ": every row");
        }
    }

    /**
     * An input that says how it is read: views share one record of the rows each view held at
     * once (from the lowest not released to the highest read); reading it whole fails.
     */
    static final class WatchedImage implements dev.headroom.core.image.InputImage {
        final FloatImage img;
        final java.util.Map<String, Integer> heldPeak;
        final String name;
        int released, highest = -1;

        WatchedImage(FloatImage img, String name, java.util.Map<String, Integer> heldPeak) {
            this.img = img;
            this.name = name;
            this.heldPeak = heldPeak;
        }

        @Override public int width() { return img.width(); }
        @Override public int height() { return img.height(); }
        @Override public int channels() { return img.channels(); }
        @Override public int bitDepth() { return img.bitDepth(); }

        @Override
        public void floats(int y, int x, int n, float[] dst, int off) {
            if (y < released) throw new AssertionError(name + ": row " + y + " read after rows below " + released + " were released");
            highest = Math.max(highest, y);
            heldPeak.merge(name, highest - released + 1, Math::max);
            img.floats(y, x, n, dst, off);
        }

        @Override
        public void release(int below) {
            released = Math.max(released, below);
        }

        @Override
        public WatchedImage channels(int from, int count) {
            return new WatchedImage(img.channels(from, count), name + "[" + from + "+" + count + "]", heldPeak);
        }

        @Override
        public WatchedImage repeatChannel(int count) {
            return new WatchedImage(img.repeatChannel(count), name + "*" + count, heldPeak);
        }

        @Override
        public FloatImage toFloat() {
            throw new AssertionError(name + " read whole");
        }
    }

    /**
     * Gray and alpha images (1, 2 and 4 channels into an RGB model) blend on the device too: the
     * window makes gray samples there and the alpha, resampled a band at a time from a few rows of
     * the input, is joined to the colour samples on the host; the samples equal the host blend's
     * bit for bit, and neither the colour nor the alpha is read whole.
     */
    @Test
    void grayAndAlphaImagesBlendOnTheDeviceToTheHostsSamplesReadingAFewRows() {
        Graph g = GraphRunnerTest.denseGraph();
        Weights w = GraphRunnerTest.randomWeights(g, rnd);
        int[][] cases = {{1, 61, 45, 20, 6, 1, 8}, {2, 37, 50, 13, 5, 3, 16}, {4, 40, 120, 16, 4, 2, 8}, {4, 23, 17, 64, 8, 1, 16}, {2, 9, 31, 9, 0, 2, 8}};
        for (int[] k : cases) {
            int c = k[0], width = k[1], height = k[2], tile = k[3], overlap = k[4], bits = k[6];
            String what = c + " channels " + width + "x" + height + " tile " + tile + " overlap " + overlap + " batch " + k[5] + " " + bits + " bit";
            float[] d = new float[width * height * c];
            for (int i = 0; i < d.length; i++) d[i] = rnd.nextFloat() * 1.1f - 0.05f;   // some alpha outside [0, 1], clamped as the writers clamp
            FloatImage img = new FloatImage(width, height, c, d, bits);
            int rowValues = width * g.scale() * c;
            SampleCollector host = new SampleCollector(bits, rowValues), device = new SampleCollector(bits, rowValues);
            try (CpuOps cpu = new CpuOps(); GraphRunner runner = new GraphRunner(g, w, cpu)) {
                TiledUpscaler up = new TiledUpscaler(runner, 255f);
                up.batch(k[5]);
                new ImageUpscaler(up, 3).upscale(img, tile, overlap, null, host);
            }
            List<RingWindow> windows = new ArrayList<>();
            java.util.Map<String, Integer> held = new java.util.TreeMap<>();
            try (CpuOps cpu = new CpuOps(); GraphRunner runner = new GraphRunner(g, w, withWindows(cpu, windows, 1 + rnd.nextInt(7)))) {
                TiledUpscaler up = new TiledUpscaler(runner, 255f);
                up.batch(k[5]);
                new ImageUpscaler(up, 3).upscale(new WatchedImage(img, "in", held), tile, overlap, null, device);
            }
            assertEquals(0, host.sampleBands, what + ": the CPU blends on the host");
            assertEquals(1, windows.size(), what + ": one device window");
            assertEquals(0, device.floatBands, what + ": no float rows from the device path");
            assertEquals(c <= 2 ? windows.getFirst().emitted.size() : 0, windows.getFirst().grayEmits, what + ": gray made on the device");
            assertArrayEquals(host.bytes(), device.bytes(), what + ": the same samples bit for bit");
            int tileRows = dev.headroom.core.tiling.TileGrid.axis(height, tile, overlap, 1).getFirst().length();
            for (var e : held.entrySet()) {
                int bound = e.getKey().endsWith("[" + (c - 1) + "+1]") && c % 2 == 0 ? 2 * (5 + 64 / g.scale()) : 2 * tileRows + 2;   // alpha: a band's taps; colour: the tile rows in flight
                assertTrue(e.getValue() <= Math.min(bound, height) && (height < 100 || e.getValue() < height / 2),
                        what + ": " + e.getKey() + " held " + e.getValue() + " rows of " + height + " (" + held + ")");
            }
        }
    }

    @Test
    void aFloatOnlySinkOrTheSwitchKeepsTheHostBlend() {
        Graph g = GraphRunnerTest.denseGraph();
        Weights w = GraphRunnerTest.randomWeights(g, rnd);
        FloatImage img = randomImage(30, 22);
        List<RingWindow> windows = new ArrayList<>();
        try (CpuOps cpu = new CpuOps(); GraphRunner runner = new GraphRunner(g, w, withWindows(cpu, windows, 4))) {
            new TiledUpscaler(runner, 1f).upscale(img, 16, 4, null);   // a whole FloatImage: float rows
            assertEquals(0, windows.size());
            System.setProperty("headroom.device-blend", "false");
            try {
                SampleCollector s = new SampleCollector(8, 30 * g.scale() * 3);
                new TiledUpscaler(runner, 1f).upscale(img, 16, 4, null, s);
                assertEquals(0, windows.size(), "headroom.device-blend=false");
                assertTrue(s.floatBands > 0);
            } finally {
                System.clearProperty("headroom.device-blend");
            }
        }
    }

    @Test
    void aFittedPlanThatCountsTheWindowIsNotChargedForItTwice() {
        // the fitter puts the window in the plan's peak (Fitter.Request#outputWindow); the upscaler's own check must not add it again
        Graph g = GraphRunnerTest.denseGraph();
        Weights w = GraphRunnerTest.randomWeights(g, rnd);
        FloatImage img = randomImage(61, 45);
        int tile = 20, overlap = 6, r = g.scale();
        var ys = dev.headroom.core.tiling.TileGrid.axis(45, tile, overlap, r, 1);
        var xs = dev.headroom.core.tiling.TileGrid.axis(61, tile, overlap, r, 1);
        int th = ys.getFirst().length(), tw = xs.getFirst().length();
        long window = OutputWindow.bytes(61 * r, th * r, 3), used, need;
        try (CpuOps cpu = new CpuOps(); GraphRunner runner = new GraphRunner(g, w, cpu)) {
            used = cpu.memory().ledger().limit() - cpu.memory().headroom();
            var plan = runner.plan(1, th, tw);
            need = plan.peak() - plan.weights() + window;
        }
        // room for the run and one window within the critical threshold, not for a second window
        var thresholds = dev.headroom.runtime.memory.MemoryOptions.DEFAULT.thresholds();
        long budget = used + (long) ((need + window / 2) / thresholds.critical());
        for (boolean fitted : new boolean[] {false, true}) {
            List<RingWindow> windows = new ArrayList<>();
            try (CpuOps cpu = new CpuOps(dev.headroom.runtime.memory.MemoryOptions.DEFAULT.withBudget(budget));
                 GraphRunner runner = new GraphRunner(g, w, withWindows(cpu, windows, 4))) {
                if (fitted) runner.usePlan(1, th, tw, runner.plan(1, th, tw).withOutput(window));
                new TiledUpscaler(runner, 1f).upscale(img, tile, overlap, null, new SampleCollector(8, 61 * r * 3));
            }
            assertEquals(1, windows.size(), (fitted ? "a fitted plan with" : "a plan without") + " the window: one window in a budget of "
                    + budget + " (run and window " + need + ")");
        }
    }

    private FloatImage randomImage(int w, int h) {
        float[] d = new float[w * h * 3];
        for (int i = 0; i < d.length; i++) d[i] = rnd.nextFloat();
        return new FloatImage(w, h, 3, d, 8);
    }
}
