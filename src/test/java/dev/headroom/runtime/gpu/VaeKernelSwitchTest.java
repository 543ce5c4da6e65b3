package dev.headroom.runtime.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The VAE kernels' comparison switches (HEADROOM_VAE_GN, HEADROOM_VAE_SOFTMAX): known values, the default, typos refused. */
class VaeKernelSwitchTest {
    private static final List<String> GN = List.of("scalar", "lanes8", "affine", "affine2");

    @Test
    void anUnsetSwitchTakesItsDefaultAndAKnownValueStands() {
        assertEquals("affine2", VaeKernels.switchValue("HEADROOM_VAE_GN", null, "affine2", GN));
        assertEquals("affine2", VaeKernels.switchValue("HEADROOM_VAE_GN", " ", "affine2", GN));
        assertEquals("lanes8", VaeKernels.switchValue("HEADROOM_VAE_GN", "lanes8", "affine2", GN));
    }

    @Test
    void aMistypedSwitchIsRefusedInOneLineNamingTheChoices() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> VaeKernels.switchValue("HEADROOM_VAE_SOFTMAX", "row4", "rows4", List.of("rows4", "scalar")));
        assertEquals("HEADROOM_VAE_SOFTMAX=row4 is not a choice: use one of rows4, scalar (default rows4)", e.getMessage());
        assertTrue(!e.getMessage().contains("\n"));
    }
}
