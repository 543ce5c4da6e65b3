package dev.headroom.cli;

import dev.headroom.core.Precision;
import dev.headroom.core.Sizes;
import dev.headroom.core.plan.DeviceModel;
import dev.headroom.core.plan.LayerBands;
import dev.headroom.core.plan.MemoryPlan;
import dev.headroom.core.plan.Planner;
import dev.headroom.models.Model;
import dev.headroom.runtime.cpu.CpuMemoryModel;
import dev.headroom.runtime.gpu.CudaMemoryModel;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * `headroom plan --model VAE --size WxH`: the decode of a WxH image (latent W/8 x H/8), whole if
 * its memory plan fits the budget, else exactly tiled in the largest bands that fit
 * ({@link LayerBands}).
 */
final class VaePlan {
    private VaePlan() {}

    static int print(Model vae, int width, int height, long budget, double usableFraction, String target, List<Precision> precisions,
                     boolean cuda, boolean json) throws Exception {
        int s = vae.scale();
        if (width % s != 0 || height % s != 0) throw new Main.UsageError("--size " + width + "x" + height + ": a VAE decodes to multiples of " + s);
        int lw = width / s, lh = height / s;
        long usable = (long) (budget * usableFraction);
        Precision p = precisions.getFirst();
        DeviceModel model = cuda ? new CudaMemoryModel(p) : CpuMemoryModel.INSTANCE;
        MemoryPlan whole = Planner.plan(vae.graph(), 1, lh, lw, model, false);
        int rows = whole.peak() <= usable ? 0 : LayerBands.fit(vae.graph(), lh, lw, model, whole.weights(), usable);
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("model", vae.file().toString());
        out.put("architecture", vae.family() + " " + vae.details());
        out.put("latent", lw + "x" + lh);
        out.put("output", width + "x" + height);
        out.put("target", target);
        out.put("budget_bytes", budget);
        out.put("usable_bytes", usable);
        out.put("precision", p.toString());
        out.put("weights_bytes", whole.weights());
        out.put("whole_peak_bytes", whole.peak());
        boolean fits = whole.peak() <= usable || rows > 0;
        out.put("mode", whole.peak() <= usable ? "whole" : rows > 0 ? "tiled" : "does not fit");
        if (rows > 0) {
            out.put("band_rows", rows);
            out.put("tiled_peak_bytes", whole.weights() + LayerBands.peak(vae.graph(), lh, lw, rows, model));
        }
        if (json) {
            OutputOptions.printJson(out);
        } else {
            System.out.printf("%s, decode %s -> %s on %s%n", out.get("architecture"), out.get("latent"), out.get("output"), target);
            System.out.printf("  weights            %12s%n", Sizes.format(whole.weights()));
            System.out.printf("  whole decode peak  %12s  of %s usable%n", Sizes.format(whole.peak()), Sizes.format(usable));
            if (rows > 0) {
                System.out.printf("  tiled decode peak  %12s  in bands of %d output rows (exact: GroupNorm statistics of the whole image, attention over all positions)%n",
                        Sizes.format((Long) out.get("tiled_peak_bytes")), rows);
            }
            System.out.printf("  plan: %s%n", out.get("mode"));
        }
        if (!fits) throw new Main.UsageError("decoding " + width + "x" + height + " does not fit " + Sizes.format(usable) + " even in bands of " + LayerBands.MIN_ROWS + " rows");
        return 0;
    }
}
