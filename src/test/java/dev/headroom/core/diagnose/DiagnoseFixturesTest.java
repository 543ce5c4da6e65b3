package dev.headroom.core.diagnose;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Real logs from public issue trackers (src/test/resources/diagnose/SOURCES.md) and what they must be read as. */
class DiagnoseFixturesTest {
    static final Path DIR = Path.of("src/test/resources/diagnose");
    static final long MIB = 1L << 20, GIB = 1L << 30;

    static Diagnosis read(String file, Long gpuMemory) throws IOException {
        LogScanner s = new LogScanner(gpuMemory);
        for (String line : Files.readAllLines(DIR.resolve(file), StandardCharsets.UTF_8)) s.line(line);
        return s.finish();
    }

    static Incident only(String file) throws IOException {
        Diagnosis d = read(file, null);
        assertEquals(1, d.incidents().size(), file + ": " + d.incidents());
        return d.incidents().getFirst();
    }

    @ParameterizedTest(name = "{0} -> {1}")
    @CsvSource({
            "pytorch2-this-process.log,           OOM_CAPACITY,             cuda",
            "pytorch21-capacty-typo-4gb.log,      OOM_CAPACITY,             cuda",
            "webui-sd21-old-format.log,           OOM_CAPACITY,             cuda",
            "animatediff-fragmentation.log,       OOM_FRAGMENTATION,        cuda",
            "colorization-fragmentation.log,      OOM_FRAGMENTATION,        cuda",
            "cyclegan-other-programs.log,         OOM_OTHER_PROCESS,        cuda",
            "pytorch10-cached-format.log,         OOM_CAPACITY,             cuda",
            "pytorch-pr-wrapped-process-list.log, OOM_FRAGMENTATION,        cuda",
            "comfyui-hip-capacity.log,            OOM_CAPACITY,             hip",
            "invokeai-hip-memory-elsewhere.log,   OOM_OTHER_PROCESS,        hip",
            "comfyui-xpu-old-format.log,          OOM_CAPACITY,             xpu",
            "comfyui-xpu-huge-request.log,        OOM_CAPACITY,             xpu",
            "comfyui-mps-error-report.log,        MPS_OOM,                  mps",
            "mps-shared-pool-bytes.log,           MPS_OOM,                  mps",
            "directml-webui.log,                  DIRECTML_OOM,             directml",
            "fooocus-defaultcpuallocator.log,     HOST_OOM,                 cpu",
            "linux-cpu-allocator-error12.log,     HOST_OOM,                 cpu",
            "supir-access-violation.log,          WINDOWS_ACCESS_VIOLATION, cpu",
            "comfy-desktop-exit-code.log,         WINDOWS_ACCESS_VIOLATION, cpu",
            "comfyui-illegal-access.log,          ILLEGAL_MEMORY_ACCESS,    cuda",
            "comfyui-hip-illegal-access.log,      ILLEGAL_MEMORY_ACCESS,    hip",
            "cublas-alloc-failed.log,             CUBLAS_CUDNN_FAILURE,     cuda",
            "cudnn-no-algorithm.log,              CUBLAS_CUDNN_FAILURE,     cuda",
            "comfyui-cuda-error-oom-8gb.log,      OOM_CAPACITY,             cuda",
            "kohya-dreambooth-8gb.log,            OOM_CAPACITY,             cuda",
            "webui-4090-free-but-oom.log,         OOM_CAPACITY,             cuda",
            "comfyui-cuda-malloc-async.log,       OOM_CAPACITY,             cuda",
            "chattts-cuda-malloc-async-aligned.log, OOM_CAPACITY,           cuda",
            "tensorflow-failed-to-allocate.log,   OOM_CAPACITY,             cuda",
    })
    void classifies(String file, IncidentKind kind, String device) throws IOException {
        Incident i = only(file);
        assertEquals(kind, i.kind(), file + ": " + i.explanation());
        assertEquals(device, i.device());
        assertFalse(i.recommendations().isEmpty(), "every incident gets recommendations");
        assertFalse(i.explanation().isBlank());
    }

    @Test
    void readsTheNumbersOfEveryFormat() throws IOException {
        OomNumbers n = only("pytorch2-this-process.log").numbers();
        assertEquals(256 * MIB, n.requested());
        assertEquals(0, n.gpu());
        assertEquals(Math.round(9.77 * GIB), n.total());
        assertEquals(Math.round(185.50 * MIB), n.free());
        assertEquals(Math.round(9.43 * GIB), n.thisProcess());
        assertEquals(Math.round(9.04 * GIB), n.allocated());
        assertEquals(Math.round(142.12 * MIB), n.reservedUnallocated());

        n = only("webui-sd21-old-format.log").numbers();
        assertEquals(648 * MIB, n.requested());
        assertEquals(6 * GIB, n.total());
        assertEquals(0L, n.free());
        assertEquals(Math.round(4.70 * GIB), n.reserved());
        assertEquals(Math.round(4.70 * GIB) - Math.round(4.66 * GIB), n.reservedUnallocated(), "derived: reserved - allocated");

        n = only("pytorch10-cached-format.log").numbers();
        assertEquals(Math.round(4.68 * MIB), n.reservedUnallocated(), "'cached' is reserved but unused");

        n = only("pytorch-pr-wrapped-process-list.log").numbers();
        assertEquals(138 * MIB, n.requested(), "joined across wrapped lines");
        assertEquals(Math.round(15.90 * GIB), n.total());
        assertEquals(List.of(new OomNumbers.ProcessUse(1246069, 577 * MIB)), n.processes());
        assertEquals(Math.round(410.41 * MIB), n.reservedUnallocated());

        n = only("comfyui-mps-error-report.log").numbers();
        assertEquals(Math.round(16.91 * GIB), n.mpsAllocated());
        assertEquals(Math.round(18.13 * GIB), n.mpsMaxAllowed());
        assertEquals(Math.round(1.28 * GIB), n.requested());
        assertEquals(256L, only("mps-shared-pool-bytes.log").numbers().requested());

        assertEquals(377487360L, only("directml-webui.log").numbers().requested());
        assertEquals(19104890880L, only("tensorflow-failed-to-allocate.log").numbers().requested());
        n = only("chattts-cuda-malloc-async-aligned.log").numbers();
        assertTrue(n.asyncAllocator());
        assertEquals(320 * MIB, n.requested());
        assertEquals(Math.round(6.89 * GIB), n.allocated());
        assertEquals(Math.round(23.69 * GIB), n.total());
        assertEquals(Math.round(2.94 * MIB), n.free());
        assertEquals(0, n.gpu());
        assertEquals(128 * GIB, only("comfyui-xpu-huge-request.log").numbers().requested());
        assertEquals(Math.round(15.11 * GIB), only("comfyui-xpu-old-format.log").numbers().total());
    }

    @Test
    void readsTheJobAroundTheIncident() throws IOException {
        Incident k = only("kohya-dreambooth-8gb.log");
        assertEquals("kohya sd-scripts", k.job().tool());
        assertEquals("512x512", k.job().resolution());
        assertEquals(1, k.job().batch());
        assertEquals("WaifuDiffusion.ckpt", k.job().model());

        assertEquals("stable-diffusion-webui", only("webui-sd21-old-format.log").job().tool());
        assertEquals("InvokeAI", only("invokeai-hip-memory-elsewhere.log").job().tool());
        Incident supir = only("supir-access-violation.log");
        assertEquals("ComfyUI", supir.job().tool());
        assertEquals("SUPIR", supir.job().stage());
        assertEquals("sampling", only("comfyui-xpu-huge-request.log").job().stage());
    }

    @Test
    void explanationsCarryTheNumbersAndTheRightRemedy() throws IOException {
        Incident frag = only("animatediff-fragmentation.log");
        assertTrue(frag.explanation().contains("15.83 GiB"), frag.explanation());
        assertTrue(frag.recommendations().getFirst().action().contains("expandable_segments:True"));

        Incident hip = only("comfyui-hip-capacity.log");
        assertTrue(hip.explanation().contains("reported enough free memory"), "7.12 GiB free yet 432 MiB refused: " + hip.explanation());

        Incident other = only("cyclegan-other-programs.log");
        assertTrue(other.recommendations().getFirst().action().startsWith("Close the other programs"));

        Incident illegal = only("comfyui-illegal-access.log");
        assertTrue(illegal.explanation().contains("not a shortage"));
        assertTrue(illegal.recommendations().stream().noneMatch(r -> r.action().toLowerCase().contains("resolution")), "no size advice for a bug");

        Incident hipIllegal = only("comfyui-hip-illegal-access.log");
        assertTrue(hipIllegal.recommendations().stream().anyMatch(r -> r.action().contains("AMD_SERIALIZE_KERNEL=3")));

        Incident huge = only("comfyui-xpu-huge-request.log");
        assertTrue(huge.explanation().contains("larger than the whole card"), huge.explanation());

        Incident async = only("comfyui-cuda-malloc-async.log");
        assertTrue(async.recommendations().stream().anyMatch(r -> r.action().contains("--disable-cuda-malloc")), async.recommendations().toString());

        Incident av = only("supir-access-violation.log");
        assertTrue(av.recommendations().getFirst().action().contains("page file"));
    }

    @Test
    void aLogWithoutAMemoryErrorSaysSoAndNamesTheErrorItHas() throws IOException {
        Diagnosis d = read("comfyui-no-memory-error.log", null);
        assertTrue(d.clean());
        assertNotNull(d.lastError());
        assertTrue(d.lastError().startsWith("ConnectionResetError"), d.lastError());
        assertEquals(9, d.lastErrorLine());
    }

    @Test
    void theSameMessageTwiceIsOneIncidentSeenTwice() {
        LogScanner s = new LogScanner(null);
        String oom = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 4.00 GiB total capacity; 3.40 GiB already allocated; 0 bytes free; 3.46 GiB reserved in total by PyTorch)";
        s.line("!!! Exception during processing !!! " + oom.substring(oom.indexOf("CUDA")));
        s.line("Traceback (most recent call last):");
        s.line(oom);
        Diagnosis d = s.finish();
        assertEquals(1, d.incidents().size());
        assertEquals(2, d.incidents().getFirst().times());
    }
}
