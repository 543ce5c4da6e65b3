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
 * plan counts compact kernels (int8, fp8, NF4) compact, with a scratch for the largest expanded,
 * and 16-bit ones in the compute precision (checked against a GPU's ledger by GpuStoredSizePlanTest).
 */
class StoredSizePlanTest {
    @Test
    void plannedWeightsAreWhatTheLedgerIsChargedForEveryFormat() {
        Model m = SyntheticModels.build("srvgg-x4", 7);
        Map<WeightFormat, Long> planned = new LinkedHashMap<>(), cudaPlanned = new LinkedHashMap<>();
        for (WeightFormat f : WeightFormat.values()) {
            Weights w = f.apply(m.weights());
            long plan = Planner.plan(m.graph(), 1, 32, 32, CpuMemoryModel.INSTANCE.holding(w), true).weights();
            long charged;
            try (CpuOps ops = new CpuOps(); GraphRunner runner = new GraphRunner(m.graph(), w, ops)) {
                charged = ops.memory().usedByCategory().get("weights");
            }
            assertEquals(charged, plan, f + ": planned weights against the ledger's charge");
            planned.put(f, plan);
            var dense = Planner.plan(m.graph(), 1, 32, 32, new CudaMemoryModel(dev.headroom.core.Precision.F16), true);
            var held = Planner.plan(m.graph(), 1, 32, 32, new CudaMemoryModel(dev.headroom.core.Precision.F16).holding(w), true);
            if (f.compact()) {
                assertTrue(held.weights() < dense.weights() / 2 + dense.weights() / 4, f + " on CUDA: compact kernels stay compact, " + held.weights() + " of " + dense.weights());
                assertTrue(held.persistent() > dense.persistent(), f + " on CUDA: a scratch for the largest kernel expanded");
            } else {
                assertEquals(dense.weights(), held.weights(), f + " on CUDA: kernels in the compute precision");
                assertEquals(dense.persistent(), held.persistent(), f + " on CUDA");
            }
            cudaPlanned.put(f, held.weights());
        }
        System.out.println("planned CUDA fp16 weights by format: " + cudaPlanned);
        assertTrue(cudaPlanned.get(WeightFormat.NF4) < cudaPlanned.get(WeightFormat.INT8), cudaPlanned.toString());
        System.out.println("planned CPU weights by format: " + planned);
        assertTrue(planned.get(WeightFormat.FP16) < planned.get(WeightFormat.AS_STORED) * 0.6, planned.toString());
        assertTrue(planned.get(WeightFormat.INT8) < planned.get(WeightFormat.FP16), planned.toString());
        assertTrue(planned.get(WeightFormat.NF4) < planned.get(WeightFormat.INT8), planned.toString());
    }
}
