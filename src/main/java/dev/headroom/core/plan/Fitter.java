package dev.headroom.core.plan;

import dev.headroom.core.Precision;
import dev.headroom.core.Sizes;
import dev.headroom.core.graph.Graph;
import dev.headroom.core.tiling.AxisSpan;
import dev.headroom.core.tiling.TileGrid;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/**
 * Chooses how to run a job within a memory budget: the first precision (in the caller's order of
 * preference), the largest tile and then the largest batch of tiles (see {@link #GPU_BATCH_PIXELS})
 * whose plan's predicted peak (with the output window, where tiles blend on the device) stays within the usable share of
 * the budget (the ledger's critical pressure threshold, 90% by default: the rest is headroom for
 * what no plan sees, such as the driver's own allocations). Tiles shrink in halves from the
 * largest useful one, the image itself when it fits, down to {@link #MIN_TILE}. It also says why
 * each larger choice was rejected.
 */
public final class Fitter {
    public static final int MIN_TILE = 32;
    private static final int MAX_TILE = 2048;
    private static final int MAX_BATCH = 16;

    /**
     * On a GPU, tiles are batched up to this many input pixels per run: on the H100, RRDBNet x4 in
     * fp16 took 0.163 us per input pixel at 256x256 tiles and 0.141 us at 512x512 (10.7 and 37.0
     * ms), so smaller runs leave part of the device idle. The CPU gains nothing from batching (its
     * convolutions already spread rows over the cores).
     */
    public static final long GPU_BATCH_PIXELS = 512L * 512;

    private Fitter() {}

    /**
     * @param tile       the tile edge in input pixels; tileWidth x tileHeight is the shape each tile really runs at (padded to the model's modulus)
     * @param seconds    estimated run time from the graph's FLOPs and the backend's measured rate
     */
    public record Fit(Precision precision, int tile, int tileWidth, int tileHeight, int tiles, int batch, MemoryPlan plan,
                      long budget, long usable, double seconds, List<String> rejected) {}

    /** No tile fits: the smallest tried and what it would need. */
    public static final class NoFit extends RuntimeException {
        public final List<String> rejected;

        NoFit(String msg, List<String> rejected) {
            super(msg);
            this.rejected = List.copyOf(rejected);
        }
    }

    /**
     * What to fit: the graph and image, the budget and the share of it that may be used, and what
     * the backend allocates and how fast it runs, per precision. {@link #of} sets the defaults
     * (overlap 16, the usable share 0.9, fp32 only, any tile, row bands, one tile per run); the
     * {@code with...} methods change one field each.
     *
     * @param precisions     in order of preference
     * @param models         what the backend allocates, per precision
     * @param flopsPerSecond the backend's sustained rate per precision, for the time estimate
     * @param fixedTile      a tile the user chose (0: choose)
     * @param bands          whether plans may run the tail in row bands ({@link Bands})
     * @param batchPixels    tiles are batched while a batch stays within this many input pixels and its plan fits (0: one tile per run)
     * @param outputWindow   whether tiles are blended into an output window on the device (a CUDA upscale of an RGB
     *                       image): its bytes, one tile row of fp32 output, count in every plan's peak
     */
    public record Request(Graph graph, int width, int height, int overlap, long budget, double usableFraction, List<Precision> precisions,
                          Function<Precision, DeviceModel> models, Function<Precision, Double> flopsPerSecond, int fixedTile, boolean bands,
                          long batchPixels, boolean outputWindow) {
        public static Request of(Graph graph, int width, int height, long budget, Function<Precision, DeviceModel> models) {
            return new Request(graph, width, height, 16, budget, 0.9, List.of(Precision.F32), models, p -> 1e12, 0, true, 0, false);
        }

        public Request withOutputWindow(boolean on) {
            return new Request(graph, width, height, overlap, budget, usableFraction, precisions, models, flopsPerSecond, fixedTile, bands, batchPixels, on);
        }

        public Request withOverlap(int px) {
            return new Request(graph, width, height, px, budget, usableFraction, precisions, models, flopsPerSecond, fixedTile, bands, batchPixels, outputWindow);
        }

        public Request withUsableFraction(double f) {
            return new Request(graph, width, height, overlap, budget, f, precisions, models, flopsPerSecond, fixedTile, bands, batchPixels, outputWindow);
        }

        public Request withPrecisions(List<Precision> ps) {
            return new Request(graph, width, height, overlap, budget, usableFraction, ps, models, flopsPerSecond, fixedTile, bands, batchPixels, outputWindow);
        }

        public Request withFlopsPerSecond(Function<Precision, Double> rate) {
            return new Request(graph, width, height, overlap, budget, usableFraction, precisions, models, rate, fixedTile, bands, batchPixels, outputWindow);
        }

        public Request withTile(int tile) {
            return new Request(graph, width, height, overlap, budget, usableFraction, precisions, models, flopsPerSecond, tile, bands, batchPixels, outputWindow);
        }

        public Request withBands(boolean on) {
            return new Request(graph, width, height, overlap, budget, usableFraction, precisions, models, flopsPerSecond, fixedTile, on, batchPixels, outputWindow);
        }

        public Request withBatchPixels(long px) {
            return new Request(graph, width, height, overlap, budget, usableFraction, precisions, models, flopsPerSecond, fixedTile, bands, px, outputWindow);
        }
    }

    public static Fit fit(Request r) {
        Graph g = r.graph();
        int width = r.width(), height = r.height(), overlap = r.overlap(), fixedTile = r.fixedTile();
        long budget = r.budget(), batchPixels = r.batchPixels();
        boolean bands = r.bands();
        List<Precision> precisions = r.precisions();
        Function<Precision, DeviceModel> models = r.models();
        Function<Precision, Double> flopsPerSecond = r.flopsPerSecond();
        double usableFraction = r.usableFraction();
        long usable = (long) (budget * usableFraction);
        List<String> rejected = new ArrayList<>();
        for (Precision p : precisions) {
            DeviceModel model = models.apply(p);
            for (int tile : candidates(width, height, overlap, fixedTile)) {
                List<AxisSpan> xs = TileGrid.axis(width, tile, overlap, 1, g.modulus()), ys = TileGrid.axis(height, tile, overlap, 1, g.modulus());
                // the shape each run really has: padded up to the model's modulus (pixel unshuffle)
                int tw = TileGrid.padded(xs.getFirst().length(), g.modulus()), th = TileGrid.padded(ys.getFirst().length(), g.modulus());
                // the device's output window holds one tile row of output rows (the first, longest, tile span) beside every run
                long window = r.outputWindow() ? Planner.outputWindowBytes(width * g.scale(), ys.getFirst().length() * g.scale(), g.outputChannels()) : 0;
                MemoryPlan plan = Planner.plan(g, 1, th, tw, model, bands).withOutput(window);
                if (plan.peak() <= usable) {
                    int tiles = xs.size() * ys.size(), batch = 1;
                    for (int b = 2; b <= Math.min(tiles, MAX_BATCH) && (long) b * tw * th <= batchPixels; b++) {
                        MemoryPlan batched = Planner.plan(g, b, th, tw, model, bands).withOutput(window);
                        if (batched.peak() > usable) {
                            rejected.add(String.format("batch %d of tile %d in %s needs %s, more than the %s usable", b, tile, p,
                                    Sizes.format(batched.peak()), Sizes.format(usable)));
                            break;
                        }
                        batch = b;
                        plan = batched;
                    }
                    double seconds = g.flopsPerInputPixel() * tw * th * tiles / flopsPerSecond.apply(p);
                    return new Fit(p, tile, tw, th, tiles, batch, plan, budget, usable, seconds, rejected);
                }
                rejected.add(String.format("tile %d (%dx%d) in %s needs %s%s, more than the %s usable", tile, tw, th, p, Sizes.format(plan.peak()),
                        window > 0 ? " with its " + Sizes.format(window) + " output window" : "", Sizes.format(usable)));
            }
        }
        throw new NoFit("nothing fits in " + Sizes.format(budget) + " (" + Sizes.format(usable) + " usable): " + rejected.getLast()
                + "; use a device with more memory or a smaller model", rejected);
    }

    /** The tile edges to try, largest first: the whole image if it is small, then halves. */
    static List<Integer> candidates(int width, int height, int overlap, int fixedTile) {
        if (fixedTile > 0) return List.of(fixedTile);
        List<Integer> out = new ArrayList<>();
        int whole = Math.max(width, height);
        int t = Math.max(Math.min(whole, MAX_TILE), overlap + 1);
        out.add(t);
        int p = Integer.highestOneBit(t);
        if (p == t) p /= 2;
        for (; p >= MIN_TILE; p /= 2) if (p > overlap) out.add(p);
        return out;
    }
}
