package dev.headroom.runtime.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.core.Precision;
import dev.headroom.core.quant.WeightFormat;
import dev.headroom.core.residency.ResidencyPolicy.Priority;
import dev.headroom.core.residency.ResidencyPolicy.Where;
import dev.headroom.cuda.Driver;
import dev.headroom.models.Model;
import dev.headroom.models.ModelLoader;
import dev.headroom.models.SyntheticModels;
import dev.headroom.runtime.DeviceBuffer;
import dev.headroom.runtime.GraphRunner;
import dev.headroom.runtime.Residency;
import dev.headroom.runtime.Session;
import dev.headroom.runtime.Tensor;
import dev.headroom.testing.Randoms;
import dev.headroom.testing.SafetensorsFiles;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The residency manager's host cache on a GPU: a model loaded from an fp16 safetensors file,
 * evicted, and reloaded from its pinned host copy computes exactly what it computed when loaded
 * from the file (fp16 and fp32 sessions; and kernels held NF4, compact on the device), and the
 * times are printed side by side in one run:
 * loads from the file (each a fresh read, parse and preparation), reloads from the host copy, and
 * one plain pinned host-to-device copy of the same bytes (the bus's rate, the ceiling).
 */
class GpuHostCacheTest extends GpuDeviceTestBase {
    private static final int LOADS = 3, RELOADS = 5;

    @Test
    void aReloadFromThePinnedHostCopyComputesTheSameAndIsTimedBesideLoadsFromTheFile(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("rrdbnet-x4.fp16.safetensors");
        SafetensorsFiles.write(file, SyntheticModels.stateDict("rrdbnet-x4", 11), Precision.F16);
        Residency.Loader fp16 = () -> {
            Model m = ModelLoader.load(file);
            return new Residency.Source(m.graph(), m.weights(), m.valueRange());
        };
        Residency.Loader nf4 = () -> {   // body kernels NF4 on the device (expanded before each use), head and tail fp16
            Model m = ModelLoader.load(file);
            return new Residency.Source(m.graph(), WeightFormat.NF4.apply(m.weights()), m.valueRange());
        };
        Random r = new Random(Randoms.seed());
        float[] in = new float[32 * 32 * 3];
        for (int i = 0; i < in.length; i++) in[i] = r.nextFloat();
        Tensor tile = Tensor.wrap(in, 1, 32, 32, 3);
        record Case(Precision p, String held, Residency.Loader disk) {}
        for (Case c : new Case[] {new Case(Precision.F16, "fp16", fp16), new Case(Precision.F32, "fp16", fp16), new Case(Precision.F16, "nf4", nf4)}) {
            Precision p = c.p();
            Residency.Loader disk = c.disk();
            try (Session s = device.openSession(p)) {
                double[] load = new double[LOADS], reload = new double[RELOADS];
                float[] first = null;
                for (int i = 0; i < LOADS; i++) {
                    try (Residency cold = new Residency(device, 0)) {
                        long t0 = System.nanoTime();
                        try (Residency.Lease m = cold.acquire("from-file", Priority.NORMAL, disk, s)) {
                            load[i] = (System.nanoTime() - t0) / 1e6;
                            if (first == null) first = run(s, m, tile);
                        }
                    }
                }
                long bytes;
                try (Residency models = new Residency(device, 4L << 30)) {
                    try (Residency.Lease m = models.acquire("cached", Priority.NORMAL, disk, s)) {
                        bytes = device.memory().weights(m.key()).used();
                    }
                    String key = "cached " + p;
                    for (int i = 0; i < RELOADS; i++) {
                        assertTrue(models.makeRoom(device.memory().headroom() + bytes) >= bytes, "evicted");
                        assertEquals(Where.HOST, models.status().getFirst().where());
                        assertEquals(0, device.memory().weights(key).used(), "an evicted model holds no device memory");
                        long t0 = System.nanoTime();
                        try (Residency.Lease m = models.acquire("cached", Priority.NORMAL, disk, s)) {
                            reload[i] = (System.nanoTime() - t0) / 1e6;
                            assertArrayEquals(first, run(s, m, tile), c + ": reloaded from the host copy, the same output as loaded from the file");
                        }
                    }
                    assertEquals(1, models.counts()[0], "one load from the file");
                    assertEquals(RELOADS, models.counts()[1], "every other acquire a reload from the host copy");
                }
                double bus = pinnedCopyMs(bytes);
                Arrays.sort(load);
                Arrays.sort(reload);
                System.out.printf("RRDBNet x4 weights held %s in %s, %.1f MB on the device (file %.1f MB): load from the file median %.1f ms (%.2f GB/s; min %.1f ms), "
                                + "reload from the pinned host copy median %.2f ms (%.2f GB/s; min %.2f ms), reload %.0fx faster; one pinned copy of the same bytes %.2f ms (%.2f GB/s)%n",
                        c.held(), p, bytes / 1e6, Files.size(file) / 1e6, load[LOADS / 2], bytes / 1e6 / load[LOADS / 2], load[0], reload[RELOADS / 2],
                        bytes / 1e6 / reload[RELOADS / 2], reload[0], load[LOADS / 2] / reload[RELOADS / 2], bus, bytes / 1e6 / bus);
            }
        }
    }

    private static float[] run(Session s, Residency.Lease m, Tensor tile) {
        try (GraphRunner runner = new GraphRunner(m.graph(), m.weights(), s)) {
            return runner.run(tile).data;
        }
    }

    /** Median of 5 plain synchronous copies of {@code bytes} from pinned host memory to the device: what the bus gives. */
    private static double pinnedCopyMs(long bytes) {
        Driver cu = Driver.get();
        device.bind();
        MemorySegment host = cu.memAllocHost(bytes);
        DeviceBuffer d = device.memory().allocate(bytes);
        try {
            double[] ms = new double[5];
            for (int i = 0; i < ms.length; i++) {
                long t0 = System.nanoTime();
                cu.copyHtoD(d.address(), host, bytes);
                ms[i] = (System.nanoTime() - t0) / 1e6;
            }
            Arrays.sort(ms);
            return ms[2];
        } finally {
            device.memory().free(d);
            cu.memFreeHost(host);
        }
    }
}
