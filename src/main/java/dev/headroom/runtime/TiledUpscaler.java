package dev.headroom.runtime;

import dev.headroom.core.image.FloatImage;
import dev.headroom.core.image.InputImage;
import dev.headroom.core.image.RowSink;
import dev.headroom.core.image.SampleSink;
import dev.headroom.core.tiling.AxisSpan;
import dev.headroom.core.tiling.TileGrid;
import dev.headroom.runtime.memory.DeviceMemory;
import dev.headroom.runtime.memory.DeviceOutOfMemory;
import java.util.List;

/**
 * Runs a model over an image tile by tile and blends the tiles into a full-size output in host
 * memory (see {@link TileGrid} for the layout and the weights). Each tile is cut from the input,
 * scaled to the model's value range, run, scaled back, and added into the output with its
 * weights; only one run's activations (one tile, or one batch of them) are alive at a time.
 *
 * <p>A model with a pixel unshuffle (Real-ESRGAN's x2) takes only sizes that are a multiple of its
 * {@linkplain dev.headroom.core.graph.Graph#modulus modulus}: each tile (and an image smaller than
 * a tile) is cut that much longer, with the image's own pixels beyond it or, past the image's edge,
 * the image reflected, and the extra output is cropped off before blending ({@link TileGrid#padded}).
 *
 * <p>Tiles of one image all have the same shape, so {@link #batch} of them can run as one batch
 * (N = batch), which keeps a GPU busy when tiles are small.
 *
 * <p>The last rungs of the degrade ladder are here. When a batch runs out of device memory, the
 * batch is halved and the same tiles run again in smaller batches; later batches stay small. When
 * a single tile runs out, the tile edge is halved (down to {@link #MIN_TILE}) and that tile's
 * region alone is run again as a grid of smaller tiles blended the same way; tiles already done
 * are kept, and later tiles use the smaller edge from the start. Each rung is counted and traced
 * by the device's memory.
 */
public final class TiledUpscaler {

    /** Told after every tile. */
    public interface Progress {
        void tileDone(int done, int total);
    }

    /** Tiles are not shrunk below this edge: the overlap would be most of the work. */
    public static final int MIN_TILE = 32;

    private final GraphRunner runner;
    private final float valueRange;
    /** Tiles run padded up to a multiple of this ({@link dev.headroom.core.graph.Graph#modulus}). */
    private final int modulus;
    private int tile, shrinks, batch = 1, batchHalvings;
    /** Nanoseconds waiting for the device, blending, and in the sink, over all calls. */
    private final OutputRows.Times times = new OutputRows.Times();

    /** @param valueRange the model's input and output are in [0, valueRange] (1 or 255) */
    public TiledUpscaler(GraphRunner runner, float valueRange) {
        this.runner = runner;
        this.valueRange = valueRange;
        this.modulus = runner.graph().modulus();
    }

    public int scale() {
        return runner.graph().scale();
    }

    /** in has the model's input channel count; tile and overlap are in input pixels. The whole output in host memory. */
    public FloatImage upscale(InputImage in, int tile, int overlap, Progress progress) {
        FloatImage out = FloatImage.blank(in.width() * scale(), in.height() * scale(), runner.graph().outputChannels(), in.bitDepth());
        upscale(in, tile, overlap, progress, RowSink.into(out));
        return out;
    }

    /**
     * As {@link #upscale(InputImage, int, int, Progress)}, but each band of output rows goes to
     * {@code sink} as soon as every tile that touches it is blended, top to bottom: memory holds
     * one tile row of output ({@link OutputRows}), not the image. Where the backend can and its
     * memory has room, that window is on the device ({@link Ops#outputWindow}) and a
     * {@link SampleSink} gets the rows as samples: the tiles never come home as floats.
     */
    public void upscale(InputImage in, int tile, int overlap, Progress progress, RowSink sink) {
        upscale(in, tile, overlap, progress, sink, false);
    }

    /**
     * As {@link #upscale(InputImage, int, int, Progress, RowSink)}; with {@code gray} (a 3-channel
     * model), rows that leave a device window as samples are one gray sample a pixel, the
     * channels' mean ({@link OutputWindow#emit}); float rows from the host's blend are the model's
     * channels still, for the sink to average ({@link ImageUpscaler}).
     */
    public void upscale(InputImage in, int tile, int overlap, Progress progress, RowSink sink, boolean gray) {
        int c = runner.graph().inputChannels();
        int oc = runner.graph().outputChannels();
        if (in.channels() != c) throw new IllegalArgumentException("model takes " + c + " channels, image has " + in.channels());
        if (gray && oc != 3) throw new IllegalArgumentException("gray samples from a model of " + oc + " output channels (it takes 3)");
        int r = scale();
        this.tile = tile;
        List<AxisSpan> xs = TileGrid.axis(in.width(), tile, overlap, r, modulus);
        List<AxisSpan> ys = TileGrid.axis(in.height(), tile, overlap, r, modulus);
        List<AxisSpan[]> tiles = new java.util.ArrayList<>();
        for (AxisSpan sy : ys) for (AxisSpan sx : xs) tiles.add(new AxisSpan[] {sx, sy});
        int[] done = {0};
        Runnable tileDone = () -> {
            if (progress != null) progress.tileDone(++done[0], tiles.size());
        };
        int width = in.width() * r, height = in.height() * r, capacity = ys.getFirst().length() * r;
        OutputWindow onDevice = deviceWindow(sink, width, capacity, oc, Math.min(batch, tiles.size()),
                TileGrid.padded(ys.getFirst().length(), modulus), TileGrid.padded(xs.getFirst().length(), modulus));
        if (onDevice != null) {
            try (onDevice) {
                OutputRows.OnDevice out = new OutputRows.OnDevice(width, height, oc, capacity, times, valueRange, onDevice, (SampleSink) sink, gray);
                for (int i = 0; i < tiles.size(); ) {
                    List<AxisSpan[]> group = tiles.subList(i, Math.min(tiles.size(), i + batch));
                    i += group.size();
                    releaseAbove(in, group);
                    runOnDevice(in, group, overlap, r, out, tileDone);
                }
                out.flush();
            }
            return;
        }
        OutputRows out = new OutputRows.OnHost(width, height, oc, capacity, times, valueRange, sink);
        // two batches in flight: batch i+1 is cut and queued before batch i's output is blended,
        // so the host's work on both overlaps the device's work on i+1
        InFlight last = null;
        try {
            for (int i = 0; i < tiles.size(); ) {
                List<AxisSpan[]> group = tiles.subList(i, Math.min(tiles.size(), i + batch));
                i += group.size();
                releaseAbove(in, group);
                InFlight next = null;
                DeviceOutOfMemory failed = null;
                if (group.getFirst()[0].length() <= tile && group.getFirst()[1].length() <= tile) {
                    try {
                        next = new InFlight(group, runner.submit(stack(in, group)));
                    } catch (DeviceOutOfMemory e) {
                        failed = e;
                    }
                }
                InFlight prev = last;
                last = next;
                if (prev != null) prev.blend(r, out, tileDone);
                if (next == null) runBatch(in, group, overlap, r, out, tileDone, failed);
            }
            InFlight prev = last;
            last = null;
            if (prev != null) prev.blend(r, out, tileDone);
            out.flush();
        } finally {
            if (last != null) last.output.get();   // a batch left in flight by a failure: give its pinned buffer back
        }
    }

    /**
     * Tells the input that rows above this group's will not be read again (a streamed input drops
     * them). Tiles go top to bottom and a group's first tile is its highest; a run padded past the
     * image's bottom edge reads rows reflected up to {@code modulus} above its start.
     */
    private void releaseAbove(InputImage in, List<AxisSpan[]> group) {
        in.release(group.getFirst()[1].start() - modulus);
    }

    /**
     * Whether tiles blend on the device: the system property {@code headroom.device-blend} is not
     * "false" (HEADROOM_DEVICE_BLEND=0 for the launcher), for comparison with the host's blend.
     */
    public static boolean deviceBlend() {
        String v = System.getProperty("headroom.device-blend", "0".equals(System.getenv("HEADROOM_DEVICE_BLEND")) ? "false" : "true");
        return !v.equals("false");
    }

    /**
     * A window on the device for this image, or null for the host's: where the sink takes samples,
     * the backend has windows, and the window beside one run of (n, h, w) tiles leaves the device
     * within its critical pressure threshold.
     */
    private OutputWindow deviceWindow(RowSink sink, int width, int capacity, int channels, int n, int h, int w) {
        DeviceMemory m = runner.memory();
        if (!(sink instanceof SampleSink s) || s.sampleBits() == 0 || m == null || !deviceBlend()) return null;
        var plan = runner.plan(n, h, w);
        // a fitted plan counts the window already (Fitter.Request#outputWindow); one made here does not
        long need = plan.peak() - plan.weights() + (plan.output() > 0 ? 0 : OutputWindow.bytes(width, capacity, channels));
        if (need > m.headroom() * m.thresholds().critical()) return null;
        try {
            return runner.ops().outputWindow(width, capacity, channels);
        } catch (DeviceOutOfMemory e) {
            return null;   // the host blends instead
        }
    }

    /**
     * Runs a batch and blends it into the device window without waiting for it: the output is
     * added from the arena it was computed in. On running out of memory, the tiles not yet blended
     * go down the ladder ({@link #runBatch}).
     */
    private void runOnDevice(InputImage in, List<AxisSpan[]> group, int overlap, int r, OutputRows.OnDevice out, Runnable tileDone) {
        int[] blended = {0};
        DeviceOutOfMemory failed = null;
        if (group.getFirst()[0].length() <= tile && group.getFirst()[1].length() <= tile) {
            try {
                long t0 = System.nanoTime(), inner0 = times.blend + times.sink + times.device;
                runner.run(stack(in, group), y -> {
                    for (int b = 0; b < group.size(); b++) {
                        blend(y, b, group.get(b)[0], group.get(b)[1], r, out);
                        blended[0]++;
                        tileDone.run();
                    }
                    return null;
                });
                // issuing the run is the device's time; the blends and rows it finished inside are counted as such
                times.device += System.nanoTime() - t0 - (times.blend + times.sink + times.device - inner0);
                return;
            } catch (DeviceOutOfMemory e) {
                failed = e;
            }
        }
        List<AxisSpan[]> rest = group.subList(blended[0], group.size());
        if (!rest.isEmpty()) runBatch(in, rest, overlap, r, out, tileDone, rest.size() == group.size() ? failed : null);
    }

    /** Nanoseconds waiting for the device's outputs, blending them, and in the sink, over all calls. */
    public long deviceNanos() {
        return times.device;
    }

    public long blendNanos() {
        return times.blend;
    }

    public long sinkNanos() {
        return times.sink;
    }

    /** A batch queued on the device, its output on the way home. */
    private final class InFlight {
        final List<AxisSpan[]> group;
        final Ops.Download output;

        InFlight(List<AxisSpan[]> group, Ops.Download output) {
            this.group = group;
            this.output = output;
        }

        void blend(int r, OutputRows out, Runnable tileDone) {
            long t0 = System.nanoTime();
            Tensor y = output.get();
            times.device += System.nanoTime() - t0;
            for (int b = 0; b < group.size(); b++) {
                TiledUpscaler.this.blend(y, b, group.get(b)[0], group.get(b)[1], r, out);
                tileDone.run();
            }
        }
    }

    /** Tiles of equal shape cut from in and stacked into one (B, h, w, c) input: tile b's pixels at b * h * w * c. */
    private Tensor stack(InputImage in, List<AxisSpan[]> group) {
        int w = group.getFirst()[0].length(), h = group.getFirst()[1].length();
        if (group.size() == 1) return cut(in, group.getFirst()[0].start(), group.getFirst()[1].start(), w, h);
        Tensor x = Tensor.allocate(group.size(), TileGrid.padded(h, modulus), TileGrid.padded(w, modulus), in.channels());
        for (int b = 0; b < group.size(); b++) {
            float[] one = cut(in, group.get(b)[0].start(), group.get(b)[1].start(), w, h).data;
            System.arraycopy(one, 0, x.data, b * one.length, one.length);
        }
        return x;
    }

    /** Tiles per run (at least 1); every tile of an image has the same shape, so they stack into one (N, H, W, C) input. */
    public void batch(int tiles) {
        if (tiles < 1) throw new IllegalArgumentException("batch " + tiles + ": at least 1 tile per run");
        batch = tiles;
    }

    public int batch() {
        return batch;
    }

    /** How many times a batch ran out of memory and was halved, over all calls. */
    public int batchHalvings() {
        return batchHalvings;
    }

    /**
     * Runs tiles (x span, y span) of equal shape as one batch and blends each into out; halves the
     * batch on running out of memory. {@code failed}: the batch already ran out of memory once
     * (queued by {@link #upscale}), so that rung is taken without trying again.
     */
    private void runBatch(InputImage in, List<AxisSpan[]> group, int overlap, int r, OutputRows out, Runnable tileDone, DeviceOutOfMemory failed) {
        if (group.size() == 1) {
            AxisSpan sx = group.getFirst()[0], sy = group.getFirst()[1];
            long t0 = System.nanoTime();
            Tensor y = region(in, sx.start(), sy.start(), sx.length(), sy.length(), overlap, failed);
            times.device += System.nanoTime() - t0;
            blend(y, 0, sx, sy, r, out);
            tileDone.run();
            return;
        }
        Tensor y;
        try {
            if (failed != null) throw failed;
            long t0 = System.nanoTime();
            y = runner.run(stack(in, group));
            times.device += System.nanoTime() - t0;
        } catch (DeviceOutOfMemory e) {
            int smaller = group.size() / 2;
            DeviceMemory m = runner.memory();
            if (m != null) {
                m.rung("halve-batch", group.size() + " -> " + smaller + " tiles");
                m.emptyCache();
            }
            batch = Math.min(batch, smaller);
            batchHalvings++;
            // the same tiles again, in batches of the current size (which the first may halve again)
            for (int i = 0; i < group.size(); ) {
                int k = Math.min(batch, group.size() - i);
                runBatch(in, group.subList(i, i + k), overlap, r, out, tileDone, null);
                i += k;
            }
            return;
        }
        for (int b = 0; b < group.size(); b++) {
            blend(y, b, group.get(b)[0], group.get(b)[1], r, out);
            tileDone.run();
        }
    }

    /** How many times a tile ran out of memory and the edge was halved, over all calls. */
    public int shrinks() {
        return shrinks;
    }

    /** The tile edge in use now: the one asked for, or less after running out of memory. */
    public int tile() {
        return tile;
    }

    /**
     * The model's output for the w x h input region at (x0, y0): one run if it fits the tile, else
     * a blended grid of smaller ones. {@code failed}: that one run already ran out of memory.
     */
    private Tensor region(InputImage in, int x0, int y0, int w, int h, int overlap, DeviceOutOfMemory failed) {
        if (w <= tile && h <= tile) {
            try {
                if (failed != null) throw failed;
                return runner.run(cut(in, x0, y0, w, h));
            } catch (DeviceOutOfMemory e) {
                int smaller = tile / 2;
                if (smaller < MIN_TILE || smaller <= overlap) throw e;
                DeviceMemory m = runner.memory();
                if (m != null) {
                    m.rung("shrink-tile", tile + " -> " + smaller + " px");
                    // the failed step's buffers are all free now, so whole segments can go back
                    // (while the step ran, its live blocks pinned the segments they sat in)
                    m.emptyCache();
                }
                tile = smaller;
                shrinks++;
            }
        }
        int r = scale();
        List<AxisSpan> xs = TileGrid.axis(w, tile, overlap, r, modulus), ys = TileGrid.axis(h, tile, overlap, r, modulus);
        // as long as one run of the whole region would give (padded), so callers crop it the same way
        Tensor acc = Tensor.allocate(1, TileGrid.padded(h, modulus) * r, TileGrid.padded(w, modulus) * r, runner.graph().outputChannels());
        for (AxisSpan sy : ys) {
            for (AxisSpan sx : xs) {
                Tensor y = region(in, x0 + sx.start(), y0 + sy.start(), sx.length(), sy.length(), overlap, null);
                checkShape(y, sx.length(), sy.length(), r, acc.c);
                for (int py = 0; py < sy.length() * r; py++) {
                    float wy = sy.weight(py);
                    for (int px = 0; px < sx.length() * r; px++) {
                        float wgt = wy * sx.weight(px);
                        int src = y.index(0, py, px), dst = acc.index(0, sy.start() * r + py, sx.start() * r + px);
                        for (int ch = 0; ch < acc.c; ch++) acc.data[dst + ch] += wgt * y.data[src + ch];
                    }
                }
            }
        }
        return acc;
    }

    /**
     * The w x h region at (x0, y0), scaled to the model's range and padded up to the modulus: with
     * the image's pixels beyond the region, reflected at the image's edge.
     */
    private Tensor cut(InputImage in, int x0, int y0, int w, int h) {
        int c = in.channels();
        int pw = TileGrid.padded(w, modulus), ph = TileGrid.padded(h, modulus);
        Tensor t = Tensor.allocate(1, ph, pw, c);
        float k = valueRange;
        // each row's span as [0, 1] floats (converted here from samples where the image keeps them), then scaled
        for (int y = 0; y < ph; y++) {
            int row = reflect(y0 + y, in.height());
            int dst = y * pw * c;
            if (x0 + pw <= in.width()) {
                in.floats(row, x0, pw, t.data, dst);
            } else {
                for (int x = 0; x < pw; x++) in.floats(row, reflect(x0 + x, in.width()), 1, t.data, dst + x * c);
            }
            for (int i = dst; i < dst + pw * c; i++) t.data[i] *= k;
        }
        return t;
    }

    /** Coordinate i of an axis of {@code size} pixels, reflected at the far edge (clamped where the axis is too short to reflect). */
    static int reflect(int i, int size) {
        return i < size ? i : Math.max(0, 2 * (size - 1) - i);
    }

    /** y must be the model's output for a w x h tile padded to the modulus. */
    private void checkShape(Tensor y, int w, int h, int r, int oc) {
        if (y.h != TileGrid.padded(h, modulus) * r || y.w != TileGrid.padded(w, modulus) * r || y.c != oc) {
            throw new IllegalStateException("model gave " + y.shape() + " for a " + w + "x" + h + " tile at scale " + r
                    + (modulus > 1 ? " (run padded to a multiple of " + modulus + ")" : ""));
        }
    }

    /** Adds image {@code b} of the model's output y into out with the tile's weights. */
    private void blend(Tensor y, int b, AxisSpan sx, AxisSpan sy, int r, OutputRows out) {
        checkShape(y, sx.length(), sy.length(), r, out.channels);
        out.reach(sy.start() * r, (sy.start() + sy.length()) * r);   // the rows it finishes: the sink's time, not the blend's
        long t0 = System.nanoTime();
        out.add(y, b, sx, sy, r);
        times.blend += System.nanoTime() - t0;
    }

    public long peakActivationBytes() {
        return runner.peakBytes();
    }
}
