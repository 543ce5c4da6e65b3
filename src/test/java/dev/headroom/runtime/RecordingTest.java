package dev.headroom.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.headroom.core.Weights;
import dev.headroom.core.graph.Act;
import dev.headroom.core.graph.ChannelOrder;
import dev.headroom.core.graph.Graph;
import dev.headroom.core.graph.Op;
import dev.headroom.testing.Randoms;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The executor's record-and-replay bookkeeping (CUDA graphs on the GPU; {@link Replays}) on a
 * no-op device: the reference ops behind a device-like face whose recordings re-run the recorded
 * work. Replays must give exactly what op-by-op runs give, with new input data each time; a stale
 * recording is made again; a refused one leaves the pass running op by op; after the trials the
 * faster way is kept.
 */
class RecordingTest {
    private final Random rnd = new Random(Randoms.seed());
    private final Graph g = GraphRunnerTest.denseGraph();
    private final Weights w = GraphRunnerTest.randomWeights(g, rnd);

    /**
     * One stable arena and input buffer per size, as a caching allocator hands out, so that a
     * recording's pointers stay valid; {@link #epoch} bumps make older recordings refuse to replay.
     */
    static final class RecordingOps implements Ops {
        private final Ops inner = new ReferenceOps();
        private final Map<Long, DeviceBuffer> arenas = new HashMap<>();
        private final Map<String, Tensor> inputs = new HashMap<>();
        int recordCalls, epoch, replayDelayMs, opDelayMs;
        boolean refuse, replaying;

        @Override
        public Recording record(Runnable work) {
            recordCalls++;
            if (refuse) return null;
            int at = epoch;
            return new Recording() {
                public boolean replay() {
                    if (at != epoch) return false;
                    replaying = true;
                    try {
                        sleep(replayDelayMs);
                        work.run();
                    } finally {
                        replaying = false;
                    }
                    return true;
                }

                public void close() {}
            };
        }

        @Override
        public DeviceBuffer allocateArena(long bytes) {
            return arenas.computeIfAbsent(bytes, HostArena::allocate);
        }

        @Override
        public void releaseArena(DeviceBuffer arena) {}

        @Override
        public Tensor upload(Tensor host) {
            Tensor buf = inputs.computeIfAbsent(host.n + "x" + host.h + "x" + host.w + "x" + host.c, k -> Tensor.allocate(host.n, host.h, host.w, host.c));
            System.arraycopy(host.toArray(), 0, buf.data, 0, buf.data.length);
            return buf;
        }

        public ConvWeights prepareConv(Op.Conv2d op, float[] kernel, float[] bias, float[] slope) { return inner.prepareConv(op, kernel, bias, slope); }
        public void conv2d(Tensor in, ConvWeights cw, Tensor residual, Tensor out) {
            if (!replaying) sleep(opDelayMs);
            inner.conv2d(in, cw, residual, out);
        }

        private static void sleep(int ms) {
            if (ms == 0) return;
            try {
                Thread.sleep(ms);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        public void activation(Tensor in, Act act, float[] slope, Tensor out) { inner.activation(in, act, slope, out); }
        public void add(Tensor[] ins, Tensor out) { inner.add(ins, out); }
        public void scale(Tensor in, float factor, Tensor out) { inner.scale(in, factor, out); }
        public void upsampleNearest(Tensor in, int r, Tensor out) { inner.upsampleNearest(in, r, out); }
        public void pixelShuffle(Tensor in, int r, ChannelOrder order, Tensor out) { inner.pixelShuffle(in, r, order, out); }
        public void pixelUnshuffle(Tensor in, int r, ChannelOrder order, Tensor out) { inner.pixelUnshuffle(in, r, order, out); }
        public void copy(Tensor in, Tensor out) { inner.copy(in, out); }
    }

    private Tensor input(int h, int w) {
        return Tensor.wrap(Randoms.floats(rnd, h * w * 3, 1f), 1, h, w, 3);
    }

    private void assertSameAsOpByOp(GraphRunner recorded, Tensor in) {
        float[] want = new GraphRunner(g, w, new ReferenceOps()).run(in).toArray();
        assertArrayEquals(want, recorded.run(in).toArray(), "replayed output differs from the op-by-op output");
    }

    @Test
    void replaysReadNewInputsAndMatchOpByOpRuns() {
        RecordingOps ops = new RecordingOps();
        GraphRunner runner = new GraphRunner(g, w, ops);
        for (int i = 0; i < 4; i++) assertSameAsOpByOp(runner, input(9, 7));
        assertEquals(1, ops.recordCalls, "recorded once, on the second run");
        assertEquals(2, runner.replays(), "run 2 recorded and replayed, run 3 a replay trial, run 4 an op-by-op trial");
        assertSameAsOpByOp(runner, input(6, 5));   // a new shape is a new pass: op by op first
        assertEquals(2, runner.replays());
    }

    @Test
    void aStaleRecordingIsMadeAgain() {
        RecordingOps ops = new RecordingOps();
        GraphRunner runner = new GraphRunner(g, w, ops);
        for (int i = 0; i < 3; i++) assertSameAsOpByOp(runner, input(8, 8));
        ops.epoch++;
        assertSameAsOpByOp(runner, input(8, 8));   // run 4 is an op-by-op trial; run 5 finds the recording stale
        assertSameAsOpByOp(runner, input(8, 8));
        assertEquals(2, ops.recordCalls);
        assertEquals(3, runner.replays());
    }

    @Test
    void aRefusedPassRunsOpByOpAndIsNotOfferedAgain() {
        RecordingOps ops = new RecordingOps();
        ops.refuse = true;
        GraphRunner runner = new GraphRunner(g, w, ops);
        for (int i = 0; i < 4; i++) assertSameAsOpByOp(runner, input(8, 8));
        assertEquals(1, ops.recordCalls);
        assertEquals(0, runner.replays());
    }

    @Test
    void afterTheTrialsTheFasterWayIsKept() {
        for (boolean replayFaster : new boolean[] {true, false}) {
            RecordingOps ops = new RecordingOps();
            ops.replayDelayMs = replayFaster ? 0 : 40;
            ops.opDelayMs = replayFaster ? 4 : 0;   // per convolution: 4 ms x 9
            GraphRunner runner = new GraphRunner(g, w, ops);
            int trialsDone = 2 + 2 * Replays.TRIALS;   // op by op, recorded, then the trials
            for (int i = 0; i < trialsDone; i++) assertSameAsOpByOp(runner, input(8, 8));
            long before = runner.replays();
            for (int i = 0; i < 3; i++) assertSameAsOpByOp(runner, input(8, 8));
            assertEquals(replayFaster ? before + 3 : before, runner.replays(), replayFaster ? "replays kept" : "op-by-op runs kept");
        }
    }

    @Test
    void profilingAndRecordingOffRunOpByOp() {
        RecordingOps ops = new RecordingOps();
        GraphRunner runner = new GraphRunner(g, w, ops);
        runner.profile(true);
        for (int i = 0; i < 3; i++) assertSameAsOpByOp(runner, input(8, 8));
        runner.profile(false);
        runner.record(false);
        for (int i = 0; i < 3; i++) assertSameAsOpByOp(runner, input(8, 8));
        assertEquals(0, ops.recordCalls);
        assertEquals(0, runner.replays());
    }
}
