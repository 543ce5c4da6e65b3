package dev.headroom.runtime.memory;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * A seeded trace of allocation requests shaped like image-model activations: fp16 tiles of
 * 128-512 px with 3-192 channels, a new tile size every 100 requests (as a new job would bring),
 * and 4-23 buffers alive at a time, freed in random order. The same seed gives the same trace
 * here and in scripts/bench/replay_trace.py, which replays it through PyTorch's allocator.
 */
public final class ImageTrace {
    /** Allocate {@code bytes} as buffer {@code id}, or (bytes &lt; 0) free buffer {@code id}. */
    public record Step(int id, long bytes) {
        public boolean free() {
            return bytes < 0;
        }
    }

    private ImageTrace() {}

    public static List<Step> generate(long seed, int requests) {
        Random r = new Random(seed);
        int[] sides = {128, 192, 256, 384, 512};
        int[] channels = {3, 32, 64, 96, 128, 160, 192};
        List<Step> steps = new ArrayList<>();
        List<Integer> live = new ArrayList<>();
        int side = sides[0];
        for (int i = 0; i < requests; i++) {
            if (i % 100 == 0) side = sides[r.nextInt(sides.length)];
            steps.add(new Step(i, (long) side * side * channels[r.nextInt(channels.length)] * 2));
            live.add(i);
            while (live.size() > 4 + r.nextInt(20)) steps.add(new Step(live.remove(r.nextInt(live.size())), -1));
        }
        for (int id : live) steps.add(new Step(id, -1));
        return steps;
    }

    /** Plays the trace through any allocator; returns the highest sum of requested (unrounded) bytes live at once. */
    public static <B> long replay(List<Step> steps, java.util.function.LongFunction<B> allocate, java.util.function.Consumer<B> free) {
        var blocks = new java.util.HashMap<Integer, B>();
        var sizes = new java.util.HashMap<Integer, Long>();
        long live = 0, peak = 0;
        for (Step s : steps) {
            if (s.free()) {
                free.accept(blocks.remove(s.id()));
                live -= sizes.remove(s.id());
            } else {
                blocks.put(s.id(), allocate.apply(s.bytes()));
                sizes.put(s.id(), s.bytes());
                live += s.bytes();
                peak = Math.max(peak, live);
            }
        }
        return peak;
    }
}
