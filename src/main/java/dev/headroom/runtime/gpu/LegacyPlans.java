package dev.headroom.runtime.gpu;

import dev.headroom.core.Precision;
import dev.headroom.core.graph.Op;
import dev.headroom.core.graph.Padding;
import dev.headroom.cuda.CudaException;
import dev.headroom.cuda.Cudnn;
import dev.headroom.runtime.DeviceBuffer;
import dev.headroom.runtime.Tensor;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.Map;

/**
 * {@link Convolutions}' plans on cuDNN's legacy API, one per shape: descriptors and an algorithm,
 * remembered in the device's {@link ConvChoiceStore} as ALGO lines. Used on the session's thread, with its handle.
 */
final class LegacyPlans implements AutoCloseable {
    /** Descriptors and algorithm for one shape on the legacy API. */
    record LegacyPlan(MemorySegment x, MemorySegment w, MemorySegment conv, MemorySegment y, int algo, long workspace) {}

    private final Cudnn dnn;
    private final MemorySegment handle;
    private final Precision precision;
    private final ConvChoiceStore remembered;
    private final Map<String, LegacyPlan> plans = new HashMap<>();

    LegacyPlans(Cudnn dnn, MemorySegment handle, Precision precision, ConvChoiceStore remembered) {
        this.dnn = dnn;
        this.handle = handle;
        this.precision = precision;
        this.remembered = remembered;
    }

    int size() {
        return plans.size();
    }

    /** The plan for this shape (descriptors made once; the algorithm remembered, else found by running each on these buffers in {@code workspace}). */
    LegacyPlan plan(Op.Conv2d op, Tensor x, DeviceBuffer w, Tensor y, DeviceBuffer workspace) {
        String key = op.kh() + "x" + op.kw() + ":" + op.cin() + ">" + op.cout() + ":" + op.padding() + ":" + x.n + "," + x.h + "," + x.w;
        LegacyPlan plan = plans.get(key);
        if (plan != null) return plan;
        int padH = op.padding() == Padding.SAME ? (op.kh() - 1) / 2 : 0, padW = op.padding() == Padding.SAME ? (op.kw() - 1) / 2 : 0;
        int type = ConvCalls.dataType(precision);
        MemorySegment xd = dnn.tensorNhwc(type, x.n, x.c, x.h, x.w, x.c);
        MemorySegment wd = dnn.filterNhwc(type, op.cout(), op.cin(), op.kh(), op.kw());
        MemorySegment cd = dnn.convolution(padH, padW, Cudnn.DATA_FLOAT, precision == Precision.F32 ? Cudnn.FMA_MATH : Cudnn.TENSOR_OP_MATH);
        MemorySegment yd = dnn.tensorNhwc(type, y.n, y.c, y.h, y.w, y.c);
        long cap = CudaMemoryModel.workspaceCap(x.bytes());
        ConvChoiceStore.Entry known = remembered.get("algo " + key);
        if (known != null) {
            try {
                long ws = dnn.workspaceSize(handle, xd, wd, cd, yd, known.a());
                if (ws <= cap) {
                    plan = new LegacyPlan(xd, wd, cd, yd, known.a(), ws);
                    plans.put(key, plan);
                    return plan;
                }
            } catch (CudaException e) {
                // that algorithm no longer takes this shape: search again
            }
        }
        // time every algorithm once on the real buffers, in the workspace this convolution may use
        Cudnn.AlgoPerf[] found = dnn.findAlgorithms(handle, xd, x.device.address(), wd, w.address(), cd, yd, y.device.address(), workspace.address(), cap);
        Cudnn.AlgoPerf chosen = null;
        for (Cudnn.AlgoPerf a : found) {
            if (a.status() == 0 && a.workspace() <= cap) {
                chosen = a;
                break;
            }
        }
        if (chosen == null) throw new IllegalStateException("cuDNN has no algorithm for convolution " + key + " within " + cap + " bytes of workspace");
        long ws = dnn.workspaceSize(handle, xd, wd, cd, yd, chosen.algo());
        plan = new LegacyPlan(xd, wd, cd, yd, chosen.algo(), ws);
        plans.put(key, plan);
        remembered.put("algo " + key, new ConvChoiceStore.Entry("ALGO", chosen.algo(), 0, chosen.ms() * 1e3));
        return plan;
    }

    /** Destroys every shape's descriptors. */
    @Override
    public void close() {
        for (LegacyPlan p : plans.values()) {
            dnn.destroyTensor(p.x());
            dnn.destroyFilter(p.w());
            dnn.destroyConvolution(p.conv());
            dnn.destroyTensor(p.y());
        }
        plans.clear();
    }
}
