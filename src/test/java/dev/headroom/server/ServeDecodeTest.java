package dev.headroom.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.headroom.models.LatentFiles;
import dev.headroom.models.arch.VaeArchitecture;
import dev.headroom.runtime.Tensor;
import dev.headroom.testing.RandomVae;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * decode as a server task (issue 18 through issue 16's API), against a real server process on
 * loopback (CPU): a latent upload decodes to the same PNG bytes as {@code headroom decode} with the
 * same budget, whole and in exact bands; a repeat comes from the result cache; latents and models
 * the task cannot take are refused with 422 and the reason.
 */
class ServeDecodeTest {
    private static final String BUDGET = "256MiB";

    @TempDir
    static Path dir;
    static Path vae, latent, wrong;
    static ServerProcess server;

    @BeforeAll
    static void start() throws Exception {
        var config = new VaeArchitecture.Config(new int[] {32, 32}, 1, 4, true, true, true, true);
        vae = dir.resolve("small-vae.safetensors");
        RandomVae.writeSafetensors(RandomVae.named(RandomVae.diffusers(config, 5)), vae);
        latent = dir.resolve("latent.safetensors");
        float[] v = new float[6 * 7 * 4];
        for (int i = 0; i < v.length; i++) v[i] = (float) Math.sin(0.7 * i);
        LatentFiles.writeSafetensors(Tensor.wrap(v, 1, 6, 7, 4), latent, "sd1");
        wrong = dir.resolve("five-channels.npy");   // written NHWC, read as [B, C, h, w]: 5 channels
        LatentFiles.writeNpy(Tensor.wrap(new float[3 * 5 * 5], 1, 5, 5, 3), wrong);
        server = new ServerProcess(dir.resolve("data"), "--device", "cpu", "--vram-budget", BUDGET, "--cache", "16MiB", "--model", "vae=" + vae,
                "--model", "srvgg=" + dev.headroom.testing.Golden.dir().resolve("srvgg-x4.pth"));
    }

    @AfterAll
    static void stop() throws Exception {
        if (server != null) server.stop();
    }

    private static String decode(String extra) {
        return "{\"task\":\"decode\",\"model\":\"vae\"" + (extra == null ? "" : "," + extra) + "}";
    }

    @Test
    void aLatentDecodesToTheClisBytesWholeAndInBandsAndRepeatsComeFromTheCache() throws Exception {
        byte[] lat = Files.readAllBytes(latent);
        ServerProcess.Response r = server.submit(decode(null), lat);
        assertEquals(202, r.status(), r.text());
        JsonNode done = server.await(r.json().path("id").asText(), Duration.ofMinutes(2));
        assertEquals("succeeded", done.path("state").asText(), done.toString());
        byte[] result = server.get("/v1/jobs/" + done.path("id").asText() + "/result").body();

        Path out = dir.resolve("cli.png");
        Process p = new ProcessBuilder(ServerProcess.java("decode", latent.toString(), "-o", out.toString(), "--model", vae.toString(), "--device", "cpu",
                "--vram-budget", BUDGET, "-q")).redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes());
        assertEquals(0, p.waitFor(), log);
        assertArrayEquals(Files.readAllBytes(out), result, "the server's decode differs from headroom decode's");

        // exactly tiled in bands of 32 output rows (of 48): the same image
        JsonNode banded = server.await(server.submit(decode("\"tile\":32"), lat).json().path("id").asText(), Duration.ofMinutes(2));
        assertEquals("succeeded", banded.path("state").asText(), banded.toString());
        assertFalse(banded.path("cached").asBoolean(), "bands are a job of their own");
        assertArrayEquals(result, server.get("/v1/jobs/" + banded.path("id").asText() + "/result").body(), "banded decode differs from whole");

        // through the client: headroom submit --task decode, the same bytes
        Path viaClient = dir.resolve("submitted.png");
        Process c = new ProcessBuilder(ServerProcess.java("submit", latent.toString(), "--task", "decode", "--model", "vae", "--server", server.url,
                "--token", server.data.resolve("token").toString(), "--wait", "-o", viaClient.toString(), "-q")).redirectErrorStream(true).start();
        String clientLog = new String(c.getInputStream().readAllBytes());
        assertEquals(0, c.waitFor(), clientLog);
        assertArrayEquals(result, Files.readAllBytes(viaClient), "headroom submit --task decode saved other bytes");

        ServerProcess.Response again = server.submit(decode(null), lat);
        assertEquals(202, again.status());
        assertTrue(again.json().path("cached").asBoolean(), again.text());
        assertArrayEquals(result, server.get("/v1/jobs/" + again.json().path("id").asText() + "/result").body());
    }

    @Test
    void latentsAndModelsTheTaskCannotTakeAreRefused() throws Exception {
        byte[] lat = Files.readAllBytes(latent);
        ServeApiTest.assertProblem(server, server.submit(decode(null), Files.readAllBytes(wrong)), 422, "has 5 channels, but model 'vae' is a");
        ServeApiTest.assertProblem(server, server.submit(decode(null), "not a latent at all".getBytes()), 422, "the latent cannot be read");
        ServeApiTest.assertProblem(server, server.submit("{\"task\":\"decode\",\"model\":\"srvgg\"}", lat), 422, "is not a VAE");
        ServeApiTest.assertProblem(server, server.submit(decode("\"format\":\"jpeg\""), lat), 422, "a decode writes png");
        ServeApiTest.assertProblem(server, server.submit(decode("\"weights\":\"int8\""), lat), 422, "weights apply to upscale jobs");
        ServeApiTest.assertProblem(server, server.submit("{\"task\":\"upscale\",\"model\":\"vae\"}", TestImages.noise(40, 40, 1)), 422, "is a VAE");
        ServeApiTest.assertProblem(server, server.submit("{\"task\":\"colorize\"}", lat), 422, "\"decode\"");
        assertEquals(200, server.get("/readyz").status(), "still serving");
    }
}
