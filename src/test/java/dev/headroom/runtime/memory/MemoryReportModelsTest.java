package dev.headroom.runtime.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.residency.ResidencyPolicy.Priority;
import dev.headroom.runtime.Residency;
import dev.headroom.runtime.Session;
import dev.headroom.runtime.cpu.CpuDevice;
import dev.headroom.testing.SmallModels;
import java.io.Writer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * memory-report's drawing of the residency manager: a model loaded, evicted and reloaded from its
 * host copy appears as three marked events, listed with their model, size and detail, and the
 * model's weights are drawn as weights (its ledger node weights/&lt;model&gt;), not as activations.
 */
class MemoryReportModelsTest {
    @Test
    void loadsEvictionsAndReloadsAreMarkedAndListed(@TempDir Path dir) throws Exception {
        Path trace = dir.resolve("trace.jsonl");
        long weights;
        try (CpuDevice device = new CpuDevice(new MemoryOptions(64L << 20, false, 10_000, Pressure.Thresholds.DEFAULT));
             Residency models = new Residency(device, 64L << 20);
             Session s = device.openSession()) {
            Residency.Loader file = () -> SmallModels.build("rrdbnet", 5);
            try (var m = models.acquire("rrdb", Priority.NORMAL, file, s)) {
                weights = device.memory().weights(m.key()).used();
            }
            models.makeRoom(device.memory().headroom() + weights);
            try (var m = models.acquire("rrdb", Priority.NORMAL, file, s)) {
                assertEquals(weights, device.memory().weights(m.key()).used());
            }
            try (Writer w = Files.newBufferedWriter(trace)) {
                device.memory().trace().write(w);
            }
        }
        MemoryReport.Timeline t = MemoryReport.read(trace);
        assertEquals(List.of("load", "evict", "reload"), t.models().stream().map(MemoryReport.ModelEvent::kind).toList());
        for (MemoryReport.ModelEvent e : t.models()) {
            assertEquals("rrdb fp32", e.model());
            assertEquals(weights, e.bytes());
        }
        assertTrue(t.models().get(0).detail().contains("from disk") && t.models().get(0).detail().contains("host copy made"), t.models().get(0).detail());
        assertTrue(t.models().get(2).detail().contains("from host copy"), t.models().get(2).detail());
        long mostWeights = t.points().stream().mapToLong(p -> p.bytes()[0]).max().orElse(0);
        assertEquals(weights, mostWeights, "the model's weights drawn as weights");
        String html = MemoryReport.html(t);
        assertTrue(html.contains("Model weights: loads, evictions, reloads") && html.contains("<td>reload<td>rrdb fp32"), html);
        assertEquals(3, html.split("stroke-dasharray='2'").length - 1, "three model events drawn");
        assertEquals(1100, MemoryReport.png(t).getWidth());
    }
}
