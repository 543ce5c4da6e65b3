package dev.headroom.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.MapWeights;
import dev.headroom.core.graph.Node;
import dev.headroom.core.graph.Op;
import dev.headroom.core.plan.DeviceModel;
import dev.headroom.core.plan.MemoryPlan;
import dev.headroom.models.arch.VaeArchitecture;
import dev.headroom.runtime.cpu.CpuOps;
import dev.headroom.testing.RandomVae;
import dev.headroom.testing.Randoms;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * A node's scratch in the plan's arena ({@link DeviceModel#arenaScratch}; attention's chunks on
 * CUDA), on the CPU backend with a memory model that offers some: the planner gives the node the
 * largest size that leaves the arena as it was, never one that would grow it, and the runner hands
 * that part of the arena to the node at its step; an exactly tiled run gives it the same size where
 * its device allowance has room.
 */
class ArenaScratchTest {
    private final Random rnd = new Random(Randoms.seed());

    @Test
    void attentionGetsTheLargestScratchTheArenaHasRoomForAndTheDecodeIsUnchanged() {
        var config = new VaeArchitecture.Config(new int[] {32, 32, 64}, 1, 4, true, true, false, true);
        var d = VaeArchitecture.detect(RandomVae.diffusers(config, rnd.nextLong()));
        int h = 5 + rnd.nextInt(4), w = 5 + rnd.nextInt(4);
        Tensor z = Tensor.wrap(Randoms.floats(rnd, h * w * 4, 1f), 1, h, w, 4);
        long room = 4096, tooMuch = 1L << 40;
        try (CpuOps cpu = new CpuOps()) {
            float[] want;
            MemoryPlan without;
            try (GraphRunner plain = new GraphRunner(d.decoder(), new MapWeights(d.weights(), "random"), cpu)) {
                want = plain.run(z).toArray();
                without = plain.plan(1, h, w);
            }
            List<DeviceBuffer> arenas = new ArrayList<>(), handed = new ArrayList<>();
            Ops offering = offering(cpu, new long[] {512, room, tooMuch}, arenas, handed);
            try (GraphRunner runner = new GraphRunner(d.decoder(), new MapWeights(d.weights(), "random"), offering)) {
                float[] got = runner.run(z).toArray();
                MemoryPlan p = runner.plan(1, h, w);
                int attention = -1;
                for (Node n : d.decoder().nodes()) if (n.op() instanceof Op.Attention) attention = n.id();
                MemoryPlan.Buffer s = p.scratchOf(attention);
                assertNotNull(s, "attention's scratch in " + p.buffers());
                assertEquals(room, s.bytes(), "the largest offered that leaves the arena as it was");
                assertEquals(without.arenaBytes(), p.arenaBytes(), "arena");
                assertEquals(without.peak(), p.peak(), "peak");
                assertEquals(1, handed.size(), "one attention, handed its scratch once");
                DeviceBuffer arena = arenas.getFirst(), scratch = handed.getFirst();
                assertEquals(room, scratch.bytes());
                assertTrue(scratch.address() >= arena.address() && scratch.address() + scratch.bytes() <= arena.address() + p.arenaBytes(),
                        "scratch at " + scratch.address() + " inside the arena at " + arena.address() + " of " + p.arenaBytes() + " bytes");
                for (MemoryPlan.Buffer b : p.buffers()) {
                    boolean alive = b.first() <= attention && b.last() >= attention;
                    if (b == s || !alive) continue;
                    assertTrue(b.offset() + b.bytes() <= s.offset() || s.offset() + s.bytes() <= b.offset(), "scratch overlaps live " + b);
                }
                assertArrayEquals(want, got, "the same decode");
                // exactly tiled: attention gets the whole run's scratch where the device allowance has room for it, so it takes the same chunks
                int rows = 1 + rnd.nextInt(4 * h);
                handed.clear();
                assertArrayEquals(want, new LayerTiledRunner(runner).run(z, rows, Long.MAX_VALUE).toArray(), "tiled in bands of " + rows);
                assertEquals(List.of(room), handed.stream().map(DeviceBuffer::bytes).toList(), "the whole run's scratch, in the tiled run");
                handed.clear();
                assertArrayEquals(want, new LayerTiledRunner(runner).run(z, rows, room - 1).toArray(), "tiled, no room for the scratch");
                assertEquals(List.of(), handed, "no room: attention takes its own memory");
            }
            // nothing the arena has room for: no scratch, the node runs on its own memory as before
            try (GraphRunner runner = new GraphRunner(d.decoder(), new MapWeights(d.weights(), "random"),
                    offering(cpu, new long[] {tooMuch}, new ArrayList<>(), new ArrayList<>()))) {
                MemoryPlan p = runner.plan(1, h, w);
                for (MemoryPlan.Buffer b : p.buffers()) assertTrue(b.band() != MemoryPlan.SCRATCH, "no scratch: " + b);
                assertEquals(without.arenaBytes(), p.arenaBytes());
                assertArrayEquals(want, runner.run(z).toArray());
            }
        }
    }

    /** The CPU backend whose memory model offers {@code sizes} of arena scratch to attention; records arenas and the scratch handed over. */
    private static Ops offering(CpuOps cpu, long[] sizes, List<DeviceBuffer> arenas, List<DeviceBuffer> handed) {
        DeviceModel base = cpu.memoryModel();
        DeviceModel model = new DeviceModel() {
            public int elementBytes() { return base.elementBytes(); }
            public long weightBytes(Op.Conv2d conv) { return base.weightBytes(conv); }
            public long inputBytes(int n, int h, int w, int c) { return base.inputBytes(n, h, w, c); }
            public long scratch(Node node, int[] in, int[] out, boolean inDense, boolean outDense) { return base.scratch(node, in, out, inDense, outDense); }
            public long persistent(Node node, int[] in, int[] out) { return base.persistent(node, in, out); }
            public long[] arenaScratch(Node node, int[] in, int[] out) { return node.op() instanceof Op.Attention ? sizes.clone() : new long[0]; }
        };
        return (Ops) Proxy.newProxyInstance(Ops.class.getClassLoader(), new Class<?>[] {Ops.class}, (proxy, m, args) -> {
            if (m.getName().equals("memoryModel")) return model;
            if (m.getName().equals("attention") && args.length == 6) handed.add((DeviceBuffer) args[5]);
            try {
                Object r = m.invoke(cpu, args);
                if (m.getName().equals("allocateArena")) arenas.add((DeviceBuffer) r);
                return r;
            } catch (InvocationTargetException e) {
                throw e.getCause();
            }
        });
    }
}
