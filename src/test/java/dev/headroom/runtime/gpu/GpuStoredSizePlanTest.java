package dev.headroom.runtime.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.headroom.core.Precision;
import dev.headroom.core.Weights;
import dev.headroom.core.plan.Planner;
import dev.headroom.core.quant.WeightFormat;
import dev.headroom.models.Model;
import dev.headroom.models.SyntheticModels;
import dev.headroom.runtime.GraphRunner;
import dev.headroom.runtime.Session;
import org.junit.jupiter.api.Test;

/** On a GPU, for every --weights format, the weights a plan predicts are what the device charges to its ledger when it prepares them. */
class GpuStoredSizePlanTest extends GpuDeviceTestBase {
    @Test
    void plannedWeightsAreWhatTheLedgerIsChargedForEveryFormat() {
        Model m = SyntheticModels.build("srvgg-x4", 7);
        for (WeightFormat f : WeightFormat.values()) {
            Weights w = f.apply(m.weights());
            long plan = Planner.plan(m.graph(), 1, 32, 32, new CudaMemoryModel(Precision.F16).holding(w), true).weights();
            try (Session s = device.openSession(Precision.F16); GraphRunner runner = new GraphRunner(m.graph(), w, s)) {
                assertEquals(device.memory().usedByCategory().get("weights"), plan, f + ": planned weights against the ledger's charge");
            }
        }
    }
}
