package dev.headroom.cli;

import dev.headroom.models.Vae;
import dev.headroom.models.arch.VaeArchitecture;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** The VAE options of decode and encode: the file, and the family's latent scaling when the file's guess is wrong. */
final class VaeOptions {
    @Option(names = "--model", paramLabel = "VAE", description = "The VAE: diffusers or LDM/ComfyUI safetensors (a whole SD/SDXL/SD3 checkpoint too: only its VAE is read), or FLUX's ae.safetensors")
    Path model;

    @Option(names = "--vae-family", paramLabel = "sd1|sdxl|sd3|flux", description = "Latent scaling and shift of this family (default: from the file)")
    String family;

    @Option(names = "--scaling", paramLabel = "F", description = "Latent scaling factor (overrides the family's)")
    Float scaling;

    @Option(names = "--shift", paramLabel = "F", description = "Latent shift (overrides the family's)")
    Float shift;

    Vae load() {
        if (model == null) throw new Main.UsageError("give the VAE with --model FILE (no VAE weights come with headroom)");
        VaeArchitecture.Family f = null;
        if (family != null) {
            f = switch (family.toLowerCase()) {
                case "sd1", "sd15", "sd1.5" -> VaeArchitecture.Family.SD1;
                case "sdxl" -> VaeArchitecture.Family.SDXL;
                case "sd3" -> VaeArchitecture.Family.SD3;
                case "flux" -> VaeArchitecture.Family.FLUX;
                default -> throw new Main.UsageError("--vae-family " + family + ": use sd1, sdxl, sd3 or flux");
            };
        }
        Vae v = Vae.load(model);
        if (f != null && (f == VaeArchitecture.Family.SD3 || f == VaeArchitecture.Family.FLUX) != (v.config().latent() == 16)) {
            throw new Main.UsageError("--vae-family " + family + " does not fit " + model.getFileName() + ", a VAE with " + v.config().latent() + " latent channels");
        }
        if (scaling != null && !(scaling > 0)) throw new Main.UsageError("--scaling " + scaling + " must be positive");
        return v.with(f, scaling == null ? Float.NaN : scaling, shift == null ? Float.NaN : shift);
    }
}
