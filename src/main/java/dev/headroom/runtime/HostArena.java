package dev.headroom.runtime;

import dev.headroom.core.graph.Node;
import dev.headroom.core.graph.Op;
import dev.headroom.core.plan.DeviceModel;

/** An arena in a plain heap array, for backends that keep no device memory of their own (the reference ops). */
record HostArena(float[] data, long bytes) implements DeviceBuffer {
    /** Nothing but fp32 activations. */
    static final DeviceModel MODEL = new DeviceModel() {
        public int elementBytes() { return Float.BYTES; }
        public long weightBytes(Op.Conv2d conv) { return 0; }
        public long inputBytes(int n, int h, int w, int c) { return 0; }
        public long scratch(Node node, int[] in, int[] out, boolean inDense, boolean outDense) { return 0; }
        public long persistent(Node node, int[] in, int[] out) { return 0; }
    };

    static HostArena allocate(long bytes) {
        long floats = (bytes + Float.BYTES - 1) / Float.BYTES;
        if (floats > Integer.MAX_VALUE - 16) throw new IllegalArgumentException("an arena of " + bytes + " bytes is more than one host array holds; use smaller tiles");
        return new HostArena(new float[(int) floats], bytes);
    }

    @Override
    public long address() {
        return 0;
    }

    Tensor view(long byteOffset, int n, int h, int w, int c) {
        return Tensor.pooled(data, (int) (byteOffset / Float.BYTES), new ArenaView(byteOffset, (long) n * h * w * c * Float.BYTES), n, h, w, c);
    }
}
