package dev.headroom.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.Weights;
import dev.headroom.core.plan.Planner;
import dev.headroom.core.quant.WeightFormat;
import dev.headroom.models.Model;
import dev.headroom.models.SyntheticModels;
import dev.headroom.runtime.cpu.CpuMemoryModel;
import dev.headroom.runtime.cpu.CpuOps;
import dev.headroom.runtime.gpu.CudaMemoryModel;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The planner knows how kernels are held: for every --weights format, the weights a CPU plan
 * predicts are exactly what the CPU backend charges to its ledger when it prepares them; a CUDA
 * plan, where kernels are converted to the compute precision when loaded, does not change with it.
 */
class StoredSizePlanTest {
    @Test
    void plannedWeightsAreWhatTheLedgerIsChargedForEveryFormat() {
        Model m = SyntheticModels.build("srvgg-x4", 7);
        Map<WeightFormat, Long> planned = new LinkedHashMap<>();
        for (WeightFormat f : WeightFormat.values()) {
            Weights w = f.apply(m.weights());
            long plan = Planner.plan(m.graph(), 1, 32, 32, CpuMemoryModel.INSTANCE.holding(w), true).weights();
            long charged;
            try (CpuOps ops = new CpuOps(); GraphRunner runner = new GraphRunner(m.graph(), w, ops)) {
                charged = ops.memory().usedByCategory().get("weights");
            }
            assertEquals(charged, plan, f + ": planned weights against the ledger's charge");
            planned.put(f, plan);
            long cuda = Planner.plan(m.graph(), 1, 32, 32, new CudaMemoryModel(dev.headroom.core.Precision.F16).holding(w), true).weights();
            assertEquals(Planner.plan(m.graph(), 1, 32, 32, new CudaMemoryModel(dev.headroom.core.Precision.F16), true).weights(), cuda, f + " on CUDA");
        }
        System.out.println("planned CPU weights by format: " + planned);
        assertTrue(planned.get(WeightFormat.FP16) < planned.get(WeightFormat.AS_STORED) * 0.6, planned.toString());
        assertTrue(planned.get(WeightFormat.INT8) < planned.get(WeightFormat.FP16), planned.toString());
        assertTrue(planned.get(WeightFormat.NF4) < planned.get(WeightFormat.INT8), planned.toString());
    }
}
