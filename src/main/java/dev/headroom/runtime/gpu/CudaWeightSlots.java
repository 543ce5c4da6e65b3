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
import dev.headroom.runtime.StagedLayers;
import dev.headroom.runtime.StagedSlots;
import dev.headroom.runtime.WeightSlots;
import dev.headroom.runtime.memory.DeviceMemory;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Weight streaming's native side on a GPU: {@code count} slots on the device (allocated and
 * charged to the weights now, for the slots' whole life), a copy stream of their own, and two
 * events per slot: "loaded" (recorded on the copy stream after a copy into the slot) and "freed"
 * (recorded on the bound session's stream after the last work that reads the slot). A copy waits
 * for "freed", a convolution for "loaded", both on the device; the host never waits. The slots run
 * one session's passes ({@link CudaOps#weightSlots}), or those of every session sharing a
 * streamed model through the residency manager ({@link CudaDevice#weightSlots}), each pass bound
 * to its session ({@link #bind}): events order a pass's copies after the previous pass's uses,
 * whichever stream those ran on.
 * Streamed layers are staged in pinned host memory in the device's form ({@link Staging}: the
 * dense kernel in the precision, KRSC, or a compact blob that the session expands after the copy),
 * so a load is one asynchronous copy at the bus's full rate; their biases and slopes stay resident.
 */
final class CudaWeightSlots extends StagedSlots<CudaWeightSlots.Staging> {
    private record Staged(Op.Conv2d op, MemorySegment host, long bytes, CompactKernel compact, float[] bias, float[] slope) {}

    /** The streamed layers in pinned host memory, in the device's form for one precision. */
    static final class Staging extends StagedLayers {
        private final Driver cu = Driver.get();
        private final CudaDevice dev;
        private final Precision precision;
        private final Map<Integer, Staged> layers = new HashMap<>();
        private long bytes;

        Staging(CudaDevice dev, Precision precision) {
            this.dev = dev;
            this.precision = precision;
        }

        @Override
        public synchronized long bytes() {
            return bytes;
        }

        @Override
        public WeightSlots slots(int count, long slotBytes) {
            return holding(true, () -> new CudaWeightSlots(dev, this, null, count, slotBytes));
        }

        synchronized Staged stage(int layer, Op.Conv2d op, TensorData kernel, float[] bias, float[] slope, long slotBytes) {
            dev.bind();
            CompactKernel compact = kernel.compact() != null ? CompactKernel.of(op, kernel) : null;
            long n = compact != null ? compact.bytes() : kernel.count() * precision.bytes;
            if (n > slotBytes) throw new IllegalStateException("layer " + op.weight() + " takes " + n + " bytes, more than a slot's " + slotBytes);
            MemorySegment host = cu.memAllocHost(n);
            try {
                if (compact != null) compact.write(host);
                else krsc(op, kernel, host, precision);
            } catch (RuntimeException e) {
                cu.memFreeHost(host);
                throw e;
            }
            Staged st = new Staged(op, host, n, compact, bias, slope);
            Staged old = layers.put(layer, st);
            if (old != null) cu.memFreeHost(old.host);
            bytes += n - (old == null ? 0 : old.bytes);
            return st;
        }

        synchronized Staged get(int layer) {
            Staged st = layers.get(layer);
            if (st == null) throw new IllegalStateException("layer " + layer + " was never staged for streaming");
            return st;
        }

        synchronized Map<Integer, Staged> all() {
            return Map.copyOf(layers);
        }

        @Override
        protected synchronized void free() {
            dev.bind();
            for (Staged st : layers.values()) cu.memFreeHost(st.host);
            layers.clear();
            bytes = 0;
        }
    }

    private final Driver cu = Driver.get();
    private final VmmAndEvents ev = VmmAndEvents.get();
    private final CudaDevice dev;
    private CudaOps session;
    private final DeviceMemory alloc;
    private final Precision precision;
    private final MemorySegment copyStream;
    private final DeviceBuffer[] slots;
    private final MemorySegment[] loaded, freed;
    /** Each staged layer's resident bias and slopes (either may be null). */
    private final Map<Integer, DeviceBuffer[]> resident = new HashMap<>();

    /** Slots for {@code session}'s passes alone, with nothing staged yet (they hold the new staging's one reference). */
    static CudaWeightSlots of(CudaDevice dev, CudaOps session, int count, long slotBytes) {
        Staging staging = new Staging(dev, session.precision());
        return staging.holding(false, () -> new CudaWeightSlots(dev, staging, session, count, slotBytes));
    }

    /** Slots of a model shared by {@code precision}'s sessions, nothing staged yet; bound to a session before each pass. */
    static CudaWeightSlots shared(CudaDevice dev, Precision precision, int count, long slotBytes) {
        Staging staging = new Staging(dev, precision);
        return staging.holding(false, () -> new CudaWeightSlots(dev, staging, null, count, slotBytes));
    }

    /**
     * Slots over {@code staging} (whose reference they take), allocated on {@code session}'s stream,
     * or on the device's loader stream when shared ({@code session} null); the biases and slopes of
     * layers already staged are uploaded again.
     */
    private CudaWeightSlots(CudaDevice dev, Staging staging, CudaOps session, int count, long slotBytes) {
        super(staging, slotBytes);
        this.dev = dev;
        this.session = session;
        this.alloc = dev.memory();
        this.precision = staging.precision;
        this.slots = new DeviceBuffer[count];
        this.loaded = new MemorySegment[count];
        this.freed = new MemorySegment[count];
        dev.bind();
        this.copyStream = cu.streamCreateNonBlocking();
        try (var scope = alloc.weightsScope("weight stream slot")) {
            for (int s = 0; s < count; s++) {
                slots[s] = session != null ? alloc.allocate(slotBytes, session.stream().address()) : dev.allocateOnLoadStream(slotBytes);
                loaded[s] = ev.eventCreate();
                freed[s] = ev.eventCreate();
            }
            for (var e : staging.all().entrySet()) uploadResident(e.getKey(), e.getValue());
        } catch (RuntimeException e) {
            closeKeepingStaging();   // the staging's reference stays with the caller, who releases it
            throw e;
        }
    }

    @Override
    public void stage(int layer, Op.Conv2d op, TensorData kernel, float[] bias, float[] slope) {
        uploadResident(layer, staging.stage(layer, op, kernel, bias, slope, slotBytes()));
    }

    /** A streamed layer's bias and slopes, resident while the slots live (charged as weights). */
    private void uploadResident(int layer, Staged st) {
        DeviceBuffer b = null, s = null;
        try (var scope = alloc.weightsScope(st.op().weight())) {
            b = st.bias() == null ? null : dev.uploadRaw(MemorySegment.ofArray(st.bias()), 4L * st.bias().length);
            s = st.slope() == null ? null : dev.uploadRaw(MemorySegment.ofArray(st.slope()), 4L * st.slope().length);
        } catch (RuntimeException e) {
            for (DeviceBuffer d : new DeviceBuffer[] {b, s}) if (d != null) alloc.free(d);
            throw e;
        }
        DeviceBuffer[] old = resident.put(layer, new DeviceBuffer[] {b, s});
        if (old != null) for (DeviceBuffer d : old) if (d != null) alloc.free(d);
    }

    /** The kernel in {@code precision}, KRSC (cout, kh, kw, cin), as the device prepares dense weights. */
    private static void krsc(Op.Conv2d op, TensorData kernel, MemorySegment dst, Precision precision) {
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

    /**
     * Binds the next pass to {@code to}'s stream. When that is another session's, the copy stream
     * first waits (on the device) for every slot's last use as the old session recorded it: a
     * layer still in its slot may be used again without a copy, and the next copy into that slot
     * then waits only for the new session's "freed", which may complete before the old session's
     * stream is done reading the slot. The new session's own work does not wait: its streamed uses
     * wait for their copies, and resident layers for nothing. (SharedStreamProtocolTest checks
     * this protocol on a fake device.)
     */
    @Override
    public void bind(Ops to) {
        if (!(to instanceof CudaOps c) || c.device() != dev || c.precision() != precision) {
            throw new IllegalArgumentException("streamed weights prepared for " + precision + " on " + dev.name() + " cannot run in " + to);
        }
        if (c == session) return;
        dev.bind();
        if (session != null) for (MemorySegment e : freed) ev.streamWaitEvent(copyStream, e);
        session = c;
    }

    private CudaOps session() {
        if (session == null) throw new IllegalStateException("shared weight slots used before a pass bound them to a session");
        return session;
    }

    @Override
    public void load(int layer, int slot) {
        Staged st = staging.get(layer);
        dev.bind();
        ev.streamWaitEvent(copyStream, freed[slot]);
        cu.copyHtoDAsync(slots[slot].address(), st.host(), st.bytes(), copyStream);
        ev.eventRecord(loaded[slot], copyStream);
    }

    @Override
    public Ops.ConvWeights use(int layer, int slot) {
        Staged st = staging.get(layer);
        DeviceBuffer[] r = resident.get(layer);
        dev.bind();
        ev.streamWaitEvent(session().stream(), loaded[slot]);
        DeviceBuffer view = new ArenaView(slots[slot].address(), st.bytes());
        return st.compact() != null ? new CompactWeights(st.compact(), view, r[0], r[1], alloc, false)
                : new CudaConvWeights(st.op(), view, r[0], r[1], alloc);
    }

    @Override
    public void used(int slot) {
        dev.bind();
        ev.eventRecord(freed[slot], session().stream());
    }

    /** Waits for the copy stream and for the last uses of the slots, frees the slots and resident biases (the staged layers are released after). */
    @Override
    protected void freeSlots() {
        dev.bind();
        if (copyStream != null) cu.streamSynchronize(copyStream);
        for (MemorySegment e : freed) if (e != null) ev.eventSynchronize(e);
        for (int s = 0; s < slots.length; s++) {
            if (slots[s] != null) alloc.free(slots[s]);
            if (loaded[s] != null) ev.eventDestroy(loaded[s]);
            if (freed[s] != null) ev.eventDestroy(freed[s]);
        }
        for (DeviceBuffer[] r : resident.values()) for (DeviceBuffer d : r) if (d != null) alloc.free(d);
        resident.clear();
        if (copyStream != null) {
            alloc.retireStream(copyStream.address());
            cu.streamDestroy(copyStream);
        }
    }
}
