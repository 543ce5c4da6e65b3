package dev.headroom.models;

import dev.headroom.core.MapWeights;
import dev.headroom.core.TensorData;
import dev.headroom.core.Weights;
import dev.headroom.models.arch.UnsupportedArchitecture;
import dev.headroom.models.arch.VaeArchitecture;
import dev.headroom.models.format.Safetensors;
import dev.headroom.models.format.TorchCheckpoint;
import dev.headroom.models.format.WeightFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * A loaded AutoencoderKL: its decoder and encoder graphs (null where the file lacks one), weights
 * by diffusers name, and the latent scaling of its family: a latent is {@code (z - shift) * scaling}
 * of the decoder's input z. From a whole single-file checkpoint only the VAE's tensors are read
 * (safetensors are memory-mapped, so the UNet and text encoders are never touched).
 */
public record Vae(Path file, String format, String storedType, VaeArchitecture.Family family, String familySource,
                  VaeArchitecture.Detected detected, Weights weights, float scaling, float shift) {

    public VaeArchitecture.Config config() {
        return detected.config();
    }

    /** One line for reports: family, layout, shape. */
    public String describe() {
        return family.label + " VAE (" + familySource + "; " + detected.layout() + " keys"
                + (detected.prefix().isEmpty() ? "" : " under " + detected.prefix()) + "): " + config() + ", scaling " + scaling
                + (shift != 0 ? ", shift " + shift : "");
    }

    /** With another family's scaling and shift, or explicit values (NaN keeps the current one). */
    public Vae with(VaeArchitecture.Family f, float scaling, float shift) {
        VaeArchitecture.Family fam = f == null ? family : f;
        float sc = !Float.isNaN(scaling) ? scaling : f != null ? f.scaling : this.scaling;
        float sh = !Float.isNaN(shift) ? shift : f != null ? f.shift : this.shift;
        return new Vae(file, format, storedType, fam, f != null ? "as asked" : familySource, detected, weights, sc, sh);
    }

    public static Vae load(Path file) {
        if (!Files.isRegularFile(file)) throw new ModelFormatException(file, "no such file");
        VaeArchitecture.Hints hints = new VaeArchitecture.Hints();
        if (isZip(file)) return of(file, "PyTorch zip checkpoint", TorchCheckpoint.read(file, hints), hints);
        return of(file, "safetensors", Safetensors.read(file, hints), hints);
    }

    /** The VAE in tensors already read (with the family hints gathered from all the file's keys). */
    static Vae of(Path file, String format, WeightFile wf, VaeArchitecture.Hints hints) {
        VaeArchitecture.Detected d;
        try {
            d = VaeArchitecture.detect(wf.tensors());
        } catch (UnsupportedArchitecture e) {
            throw new ModelFormatException(file, e.getMessage() + "; give a VAE (diffusers, LDM/ComfyUI single file or FLUX ae.safetensors) with --model");
        }
        VaeArchitecture.Family f = hints.family(d.config().latent());
        Map<String, TensorData> w = d.weights();
        String source = d.config().latent() == 16 ? (f == VaeArchitecture.Family.SD3 ? "SD3 checkpoint keys" : "16 latent channels; --vae-family sd3 for SD3")
                : (f == VaeArchitecture.Family.SD1 ? "SD 1.x checkpoint keys" : "4 latent channels; --vae-family sd1 for SD 1.x");
        return new Vae(file, format, String.join("+", wf.storedTypes()), f, source, d, new MapWeights(w, file.getFileName().toString()), f.scaling, f.shift);
    }

    /** As a {@link Model} (the decoder's graph, or the encoder's where there is no decoder) for {@code models inspect}. */
    public Model asModel() {
        var g = detected.decoder() != null ? detected.decoder() : detected.encoder();
        return new Model(file, format, "AutoencoderKL", describe(), storedType, g, weights, 1f, "VAE images are [-1, 1], written as 0..1");
    }

    private static boolean isZip(Path f) {
        try (var in = Files.newInputStream(f)) {
            byte[] b = in.readNBytes(4);
            return b.length == 4 && b[0] == 'P' && b[1] == 'K' && b[2] == 3 && b[3] == 4;
        } catch (java.io.IOException e) {
            throw new ModelFormatException(f, "cannot read: " + e.getMessage());
        }
    }
}
