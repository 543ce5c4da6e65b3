package dev.headroom.runtime;

import dev.headroom.core.image.RowSink;
import dev.headroom.core.image.SampleSink;
import dev.headroom.core.tiling.AxisSpan;

/**
 * The output rows that a tiled upscale ({@link TiledUpscaler}) is still blending tiles into: from
 * the first row not yet given to the sink, as many rows as one tile row covers. A tile row starting
 * at output row s makes every row above s final (tiles come top to bottom), and those go to the
 * sink. {@link OnHost} keeps them as floats in host memory; {@link OnDevice} where the tiles ran
 * ({@link OutputWindow}), sending rows home as samples.
 */
abstract class OutputRows {
    /** Nanoseconds waiting for the device, blending, and in the sink; shared with the upscaler that reports them. */
    static final class Times {
        long device, blend, sink;
    }

    final int width, height, channels, capacity;
    final Times times;
    /** The model's output is in [0, valueRange]; rows are in [0, 1]. */
    final float valueRange;
    /** The first output row not yet given to the sink. */
    int top;

    OutputRows(int width, int height, int channels, int capacity, Times times, float valueRange) {
        this.width = width;
        this.height = height;
        this.channels = channels;
        this.capacity = capacity;
        this.times = times;
        this.valueRange = valueRange;
    }

    /** Makes rows [from, to) addressable, first giving the sink every row above {@code from}. */
    void reach(int from, int to) {
        if (from > top) emit(from - top);
        if (to - top > capacity) throw new IllegalStateException("tile rows " + from + ".." + to + " beyond the window at " + top + "+" + capacity);
    }

    private void emit(int rows) {
        long t0 = System.nanoTime();
        emitRows(rows);
        top += rows;
        times.sink += System.nanoTime() - t0;
    }

    /** Gives the sink every row left. */
    void flush() {
        if (top < height) emit(height - top);
    }

    /** Gives rows [top, top + rows) to the sink and makes room for as many below the window. */
    abstract void emitRows(int rows);

    /**
     * Adds image b of y, the model's output for the tile (sx, sy) at scale r (shape checked; it may
     * be longer, the padding's output, which is left out), with the tile's weights; its rows are
     * within reach.
     */
    abstract void add(Tensor y, int b, AxisSpan sx, AxisSpan sy, int r);

    /** The rows as host floats, moved up as rows leave; rows blended in parallel for big tiles. */
    static final class OnHost extends OutputRows {
        final float[] acc;
        final RowSink sink;

        OnHost(int width, int height, int channels, int capacity, Times times, float valueRange, RowSink sink) {
            super(width, height, channels, capacity, times, valueRange);
            this.acc = new float[Math.multiplyExact(Math.multiplyExact(width, capacity), channels)];
            this.sink = sink;
        }

        /** The index in acc of output row y, column x. */
        int index(int y, int x) {
            return ((y - top) * width + x) * channels;
        }

        @Override
        void emitRows(int rows) {
            int rowLength = width * channels;
            sink.rows(acc, 0, rows);
            System.arraycopy(acc, rows * rowLength, acc, 0, (capacity - rows) * rowLength);
            java.util.Arrays.fill(acc, (capacity - rows) * rowLength, capacity * rowLength, 0f);
        }

        @Override
        void add(Tensor y, int b, AxisSpan sx, AxisSpan sy, int r) {
            int oc = channels, rows = sy.length() * r, cols = sx.length() * r;
            float inv = 1f / valueRange;
            float[] o = acc;
            java.util.function.IntConsumer row = py -> {
                float wy = sy.weight(py);
                int dst = index(sy.start() * r + py, sx.start() * r);
                int src = y.index(b, py, 0);
                for (int px = 0; px < cols; px++, dst += oc, src += y.stride) {
                    float wgt = wy * sx.weight(px);
                    // the output starts at zero and 0 + 1 * v == v, so a lone tile is copied exactly
                    for (int ch = 0; ch < oc; ch++) o[dst + ch] += wgt * (y.data[src + ch] * inv);
                }
            };
            java.util.stream.IntStream all = java.util.stream.IntStream.range(0, rows);
            ((long) rows * cols * oc >= 1 << 20 ? all.parallel() : all).forEach(row);
        }
    }

    /** The rows on the device ({@link OutputWindow}): tiles added where they ran, rows sent home as samples. */
    static final class OnDevice extends OutputRows {
        final OutputWindow device;
        final SampleSink sink;
        /** Rows leave as one gray sample a pixel (the mean of 3 channels; {@link OutputWindow#emit}). */
        final boolean gray;

        OnDevice(int width, int height, int channels, int capacity, Times times, float valueRange, OutputWindow device, SampleSink sink, boolean gray) {
            super(width, height, channels, capacity, times, valueRange);
            this.device = device;
            this.sink = sink;
            this.gray = gray;
        }

        @Override
        void emitRows(int rows) {
            long waited = device.waitNanos();
            device.emit(top, rows, gray, sink);
            // the wait for tiles still running is the device's time, not the writer's
            waited = device.waitNanos() - waited;
            times.device += waited;
            times.sink -= waited;
        }

        @Override
        void add(Tensor y, int b, AxisSpan sx, AxisSpan sy, int r) {
            device.add(y, b, sy.length() * r, sx.length() * r, sy.weights(), sx.weights(), 1f / valueRange, sy.start() * r, sx.start() * r);
        }
    }
}
