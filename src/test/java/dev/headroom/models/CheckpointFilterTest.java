package dev.headroom.models;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.models.format.Safetensors;
import dev.headroom.models.format.TorchCheckpoint;
import dev.headroom.testing.Golden;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/**
 * Reading only some tensors of a checkpoint (the VAE of a whole SD checkpoint): the kept ones come
 * back whole, the others are not read, and keeping none is an empty result, not an error.
 */
class CheckpointFilterTest {
    @Test
    void zipAndSafetensorsReadOnlyTheTensorsKept() {
        var all = TorchCheckpoint.read(Golden.dir().resolve("rrdbnet-x4.pth")).tensors();
        var some = TorchCheckpoint.read(Golden.dir().resolve("rrdbnet-x4.pth"), k -> k.startsWith("conv_first.")).tensors();
        assertEquals(Set.of("conv_first.weight", "conv_first.bias"), some.keySet());
        assertTrue(java.util.Arrays.equals(all.get("conv_first.weight").data(), some.get("conv_first.weight").data()));
        assertTrue(TorchCheckpoint.read(Golden.dir().resolve("rrdbnet-x4.pth"), k -> false).tensors().isEmpty());

        Set<String> seen = new TreeSet<>();
        var vae = Safetensors.read(Golden.dir().resolve("vae-sd.sdxl-checkpoint.safetensors"), k -> seen.add(k) && k.startsWith("first_stage_model."));
        assertTrue(seen.contains("model.diffusion_model.input_blocks.0.0.weight"), "every name is offered to the filter");
        assertTrue(vae.tensors().keySet().stream().allMatch(k -> k.startsWith("first_stage_model.")));
        assertEquals(seen.size() - 2, vae.tensors().size(), "all but the stand-in UNet and text-encoder tensors");
    }
}
