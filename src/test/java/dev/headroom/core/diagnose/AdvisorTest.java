package dev.headroom.core.diagnose;

import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class AdvisorTest {
    static final long GIB = 1L << 30;

    private static String first(JobContext.Snapshot job, Long card) {
        return Advisor.advise(IncidentKind.OOM_CAPACITY, "cuda", OomNumbers.NONE, job, card).recommendations().getFirst().action();
    }

    @Test
    void ddcolorInputSizeFollowsTheCard() {
        JobContext.Snapshot dd = new JobContext.Snapshot("ComfyUI", "DDColor colorization", null, 1280, 1280, null);
        assertTrue(first(dd, 12 * GIB).contains("960 for buildings") && first(dd, 12 * GIB).contains("680 for portraits"), first(dd, 12 * GIB));
        assertTrue(first(dd, 8 * GIB).contains("at most 768"), first(dd, 8 * GIB));
        assertTrue(first(dd, 8 * GIB).contains("now 1280"));
    }

    @Test
    void resolutionTargetFollowsWhatWasAvailable() {
        // 1 GiB wanted, 256 MiB free: a quarter of the pixels, half of each side
        OomNumbers n = new OomNumbers(GIB, 0, 8 * GIB, GIB / 4, 7 * GIB, 7 * GIB, 0L, null, java.util.List.of(), null, null, null, false);
        JobContext.Snapshot job = new JobContext.Snapshot(null, "sampling", null, 2048, 2048, 1);
        var advice = Advisor.advise(IncidentKind.OOM_CAPACITY, "cuda", n, job, null);
        assertTrue(advice.recommendations().stream().anyMatch(r -> r.action().contains("to about 1024x1024")), advice.recommendations().toString());
    }

    @Test
    void upscalingPointsAtHeadroom() {
        JobContext.Snapshot up = new JobContext.Snapshot("ComfyUI", "upscaling", "RealESRGAN_x4plus.pth", 2048, 2048, null);
        var advice = Advisor.advise(IncidentKind.OOM_CAPACITY, "cuda", OomNumbers.NONE, up, 8 * GIB);
        assertTrue(advice.recommendations().stream().anyMatch(r -> r.action().startsWith("Or upscale with headroom") && r.action().contains("--tile 256")));
    }
}
