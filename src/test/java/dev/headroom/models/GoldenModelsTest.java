package dev.headroom.models;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.runtime.GraphRunner;
import dev.headroom.runtime.Tensor;
import dev.headroom.runtime.cpu.CpuOps;
import dev.headroom.testing.Golden;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Seeded RRDBNet and SRVGGNetCompact checkpoints against PyTorch's outputs for them
 * (scripts/golden/make_golden.py; PyTorch computed in float64). fp32 weights must match within
 * 1e-4 relative; fp16 files are compared with the output of their own fp16-rounded weights.
 */
class GoldenModelsTest {

    @ParameterizedTest(name = "{0}")
    @CsvSource({
            "rrdbnet-x4.pth,                 rrdbnet-x4.out.hrt,              RRDBNet,         4, 1e-4",
            "rrdbnet-x4.safetensors,         rrdbnet-x4.out.hrt,              RRDBNet,         4, 1e-4",
            "rrdbnet-x4.esrgan-keys.pth,     rrdbnet-x4.out.hrt,              RRDBNet,         4, 1e-4",
            "rrdbnet-x2.pth,                 rrdbnet-x2.out.hrt,              RRDBNet,         2, 1e-4",
            "srvgg-x4.pth,                   srvgg-x4.out.hrt,                SRVGGNetCompact, 4, 1e-4",
            "rrdbnet-x4.fp16.safetensors,    rrdbnet-x4.fp16-weights.out.hrt, RRDBNet,         4, 1e-4",
            "rrdbnet-x2.fp16.safetensors,    rrdbnet-x2.fp16-weights.out.hrt, RRDBNet,         2, 1e-4",
            "srvgg-x4.fp16.safetensors,      srvgg-x4.fp16-weights.out.hrt,   SRVGGNetCompact, 4, 1e-4",
            // bf16 keeps 8 bits of mantissa: compared with the fp32 output, loosely
            "rrdbnet-x4.bf16.safetensors,    rrdbnet-x4.out.hrt,              RRDBNet,         4, 5e-2",
    })
    void matchesPyTorch(String file, String expected, String family, int scale, double tolerance) {
        Model m = ModelLoader.load(Golden.dir().resolve(file));
        assertEquals(family, m.family());
        assertEquals(scale, m.scale());
        Golden in = Golden.read("input-20x28.hrt");
        Golden want = Golden.read(expected);
        Tensor out = new GraphRunner(m.graph(), m.weights(), new CpuOps())
                .run(Tensor.wrap(in.data(), in.shape()[0], in.shape()[1], in.shape()[2], in.shape()[3]));
        assertArrayEquals(want.shape(), new int[] {out.n, out.h, out.w, out.c});
        double err = Golden.relativeError(out.toArray(), want.data());
        System.out.printf("%-30s %s %s: max error / max |output| = %.2e (tolerance %.0e)%n", file, m.family(), m.details(), err, tolerance);
        assertTrue(err <= tolerance, file + ": relative error " + err);
    }
}
