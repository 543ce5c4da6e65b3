package dev.headroom.runtime.gpu;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import dev.headroom.core.Precision;
import dev.headroom.core.TensorData;
import dev.headroom.core.graph.Op;
import dev.headroom.cuda.Driver;
import dev.headroom.cuda.VmmAndEvents;
import dev.headroom.runtime.ArenaView;
import dev.headroom.runtime.DeviceBuffer;
import dev.headroom.runtime.Ops;
import dev.headroom.runtime.WeightSlots;
import dev.headroom.runtime.memory.DeviceMemory;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Weight streaming's native side on a GPU, for one session: {@code count} slots on the device
 * (allocated and charged to the weights now, for the slots' whole life), a copy stream of their
 * own, and two events per slot: "loaded" (recorded on the copy stream after a copy into the slot)
 * and "freed" (recorded on the session's stream after the last work that reads the slot). A copy
 * waits for "freed", a convolution for "loaded", both on the device; the host never waits.
 * Streamed layers are staged in pinned host memory in the device's form (the dense kernel in the
 * session's precision, KRSC, or a compact blob that the session expands after the copy), so a
 * load is one asynchronous copy at the bus's full rate.
 */
final class CudaWeightSlots implements WeightSlots {
    private record Staged(Op.Conv2d op, MemorySegment host, long bytes, CompactKernel compact, DeviceBuffer bias, DeviceBuffer slope) {}

    private final Driver cu = Driver.get();
    private final VmmAndEvents ev = VmmAndEvents.get();
    private final CudaDevice dev;
    private final CudaOps session;
    private final DeviceMemory alloc;
    private final Precision precision;
    private final long slotBytes;
    private final MemorySegment copyStream;
    private final DeviceBuffer[] slots;
    private final MemorySegment[] loaded, freed;
    private final Map<Integer, Staged> staged = new HashMap<>();
    private final List<DeviceBuffer> resident = new ArrayList<>();
    private boolean closed;

    CudaWeightSlots(CudaDevice dev, CudaOps session, int count, long slotBytes) {
        this.dev = dev;
        this.session = session;
        this.alloc = dev.memory();
        this.precision = session.precision();
        this.slotBytes = slotBytes;
        this.slots = new DeviceBuffer[count];
        this.loaded = new MemorySegment[count];
        this.freed = new MemorySegment[count];
        this.copyStream = cu.streamCreateNonBlocking();
        try (var scope = alloc.weightsScope("weight stream slot")) {
            for (int s = 0; s < count; s++) {
                slots[s] = alloc.allocate(slotBytes, session.stream().address());
                loaded[s] = ev.eventCreate();
                freed[s] = ev.eventCreate();
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    @Override
    public void stage(int layer, Op.Conv2d op, TensorData kernel, float[] bias, float[] slope) {
        dev.bind();
        CompactKernel compact = kernel.compact() != null ? CompactKernel.of(op, kernel) : null;
        long bytes = compact != null ? compact.bytes() : kernel.count() * precision.bytes;
        if (bytes > slotBytes) throw new IllegalStateException("layer " + op.weight() + " takes " + bytes + " bytes, more than a slot's " + slotBytes);
        MemorySegment host = cu.memAllocHost(bytes);
        DeviceBuffer b = null, s = null;
        try {
            if (compact != null) compact.write(host);
            else krsc(op, kernel, host);
            try (var scope = alloc.weightsScope(op.weight())) {
                b = bias == null ? null : dev.uploadRaw(MemorySegment.ofArray(bias), 4L * bias.length);
                s = slope == null ? null : dev.uploadRaw(MemorySegment.ofArray(slope), 4L * slope.length);
            }
        } catch (RuntimeException e) {
            cu.memFreeHost(host);
            for (DeviceBuffer d : new DeviceBuffer[] {b, s}) if (d != null) alloc.free(d);
            throw e;
        }
        if (b != null) resident.add(b);
        if (s != null) resident.add(s);
        staged.put(layer, new Staged(op, host, bytes, compact, b, s));
    }

    /** The kernel in the session's precision, KRSC (cout, kh, kw, cin), as the device prepares dense weights. */
    private void krsc(Op.Conv2d op, TensorData kernel, MemorySegment dst) {
        int kh = op.kh(), kw = op.kw(), ci = op.cin(), co = op.cout();
        boolean raw = kernel.stored() == precision && precision != Precision.F32;
        short[] halves = raw ? kernel.halves() : null;
        float[] floats = raw ? null : kernel.data();
        short[] bits = precision == Precision.F32 ? null : new short[(int) kernel.count()];
        float[] out = precision == Precision.F32 ? new float[(int) kernel.count()] : null;
        for (int y = 0; y < kh; y++)
            for (int x = 0; x < kw; x++)
                for (int i = 0; i < ci; i++)
                    for (int o = 0; o < co; o++) {
                        int from = ((y * kw + x) * ci + i) * co + o, to = ((o * kh + y) * kw + x) * ci + i;
                        if (out != null) out[to] = floats[from];
                        else bits[to] = raw ? halves[from] : precision == Precision.F16 ? Float.floatToFloat16(floats[from]) : precision.toBits(floats[from]);
                    }
        if (out != null) MemorySegment.copy(out, 0, dst, JAVA_FLOAT, 0, out.length);
        else MemorySegment.copy(bits, 0, dst, JAVA_SHORT, 0, bits.length);
    }

    @Override
    public void load(int layer, int slot) {
        Staged st = staged(layer);
        dev.bind();
        ev.streamWaitEvent(copyStream, freed[slot]);
        cu.copyHtoDAsync(slots[slot].address(), st.host, st.bytes, copyStream);
        ev.eventRecord(loaded[slot], copyStream);
    }

    @Override
    public Ops.ConvWeights use(int layer, int slot) {
        Staged st = staged(layer);
        dev.bind();
        ev.streamWaitEvent(session.stream(), loaded[slot]);
        DeviceBuffer view = new ArenaView(slots[slot].address(), st.bytes);
        return st.compact != null ? new CompactWeights(st.compact, view, st.bias, st.slope, alloc, false)
                : new Convolutions.Weights(st.op, view, st.bias, st.slope, alloc);
    }

    @Override
    public void used(int slot) {
        dev.bind();
        ev.eventRecord(freed[slot], session.stream());
    }

    private Staged staged(int layer) {
        Staged st = staged.get(layer);
        if (st == null) throw new IllegalStateException("layer " + layer + " was never staged for streaming");
        return st;
    }

    @Override
    public long slotBytes() {
        return slotBytes;
    }

    /** Pinned host bytes the staged layers hold. */
    long stagedBytes() {
        long b = 0;
        for (Staged s : staged.values()) b += s.bytes;
        return b;
    }

    /** Waits for the copy stream and for the session's last uses of the slots, then frees everything. */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        dev.bind();
        cu.streamSynchronize(copyStream);
        for (MemorySegment e : freed) if (e != null) ev.eventSynchronize(e);
        for (int s = 0; s < slots.length; s++) {
            if (slots[s] != null) alloc.free(slots[s]);
            if (loaded[s] != null) ev.eventDestroy(loaded[s]);
            if (freed[s] != null) ev.eventDestroy(freed[s]);
        }
        for (Staged s : staged.values()) cu.memFreeHost(s.host);
        staged.clear();
        for (DeviceBuffer b : resident) alloc.free(b);
        resident.clear();
        alloc.retireStream(copyStream.address());
        cu.streamDestroy(copyStream);
    }
}
