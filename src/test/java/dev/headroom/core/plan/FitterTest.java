package dev.headroom.core.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.Precision;
import dev.headroom.core.graph.Graph;
import dev.headroom.models.SyntheticModels;
import dev.headroom.runtime.gpu.CudaMemoryModel;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The fitter's choices for a card, without a GPU: tile first, then batch, within the usable budget. */
class FitterTest {
    private final Graph g = SyntheticModels.build("srvgg-x4", 1).graph();

    private Fitter.Fit fit(int size, long budget, int tile, long batchPixels) {
        return Fitter.fit(Fitter.Request.of(g, size, size, budget, p -> new CudaMemoryModel(p)).withPrecisions(List.of(Precision.F16))
                .withFlopsPerSecond(p -> 59e12).withTile(tile).withBatchPixels(batchPixels));
    }

    @Test
    void smallTilesAreBatchedUpToThePixelLimitAndThePlanStillFits() {
        Fitter.Fit f = fit(1024, 8L << 30, 128, Fitter.GPU_BATCH_PIXELS);
        assertTrue(f.tiles() > 16, f.tiles() + " tiles");
        long pixels = (long) f.tileWidth() * f.tileHeight();
        assertTrue(f.batch() > 1 && f.batch() * pixels <= Fitter.GPU_BATCH_PIXELS, "batch " + f.batch() + " of " + pixels + " px");
        assertTrue(f.batch() == 16 || (f.batch() + 1) * pixels > Fitter.GPU_BATCH_PIXELS, "the largest batch within the pixel limit");
        assertTrue(f.plan().peak() <= f.usable());
        assertTrue(f.plan().peak() > fit(1024, 8L << 30, 128, 0).plan().peak(), "the plan is the batch's");
        assertEquals(1, fit(1024, 8L << 30, 128, 0).batch(), "no batching without a pixel allowance (the CPU)");
        assertEquals(1, fit(2048, 8L << 30, 1024, Fitter.GPU_BATCH_PIXELS).batch(), "a tile of over 512x512 pixels is already a full run");
    }

    @Test
    void theBudgetLimitsTheBatchAndSaysWhy() {
        long one = fit(1024, 8L << 30, 128, 0).plan().peak();
        // room for about three tiles' activations beside the weights, not four
        long budget = (long) ((one + 2.2 * (one - fit(1024, 8L << 30, 128, 0).plan().weights())) / 0.9);
        Fitter.Fit f = fit(1024, budget, 128, Fitter.GPU_BATCH_PIXELS);
        assertTrue(f.batch() > 1 && f.batch() < 16, "batch " + f.batch());
        assertTrue(f.plan().peak() <= f.usable());
        assertTrue(f.rejected().getLast().startsWith("batch " + (f.batch() + 1) + " of tile 128"), f.rejected().toString());
    }

    private Fitter.Fit fitWide(long budget, boolean window) {
        // a wide image: one tile row of its x4 output is hundreds of MB, as a 4096-wide photo's is
        return Fitter.fit(Fitter.Request.of(g, 4096, 1024, budget, p -> new CudaMemoryModel(p)).withPrecisions(List.of(Precision.F16))
                .withFlopsPerSecond(p -> 59e12).withOutputWindow(window));
    }

    @Test
    void theDeviceOutputWindowCountsInThePeakAndShrinksTheTileWhenItDoesNotFitBeside() {
        Fitter.Fit without = fitWide(64L << 30, false), with = fitWide(64L << 30, true);
        assertEquals(without.tile(), with.tile(), "room for both: the same tile");
        long window = Planner.outputWindowBytes(4096 * 4, with.tileHeight() * 4, 3);
        assertEquals(0, without.plan().output());
        assertEquals(window, with.plan().output(), "one tile row of fp32 output rows and a band of samples");
        assertEquals(without.plan().peak() + window, with.plan().peak(), "the window is part of the predicted peak");
        // a budget the tile fits alone but not beside its window: the fitter takes a smaller tile, and says why
        long budget = (long) ((without.plan().peak() + window / 2) / 0.9);
        assertEquals(without.tile(), fitWide(budget, false).tile());
        Fitter.Fit f = fitWide(budget, true);
        assertTrue(f.tile() < without.tile(), "tile " + f.tile() + " with the window, " + without.tile() + " without");
        assertTrue(f.plan().peak() <= f.usable() && f.plan().output() > 0, f.plan().peak() + " of " + f.usable());
        assertTrue(f.rejected().getFirst().contains("output window"), f.rejected().toString());
    }
}
