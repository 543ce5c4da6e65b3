package dev.headroom.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.headroom.testing.Randoms;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DiagnoseCommandTest {
    static final Path FIXTURES = Path.of("src/test/resources/diagnose");
    static final String OOM = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 256.00 MiB. GPU 0 has a total capacity of 9.77 GiB of which "
            + "185.50 MiB is free. Including non-PyTorch memory, this process has 9.43 GiB memory in use. Of the allocated memory 9.04 GiB is "
            + "allocated by PyTorch, and 142.12 MiB is reserved by PyTorch but unallocated.";

    @TempDir
    Path dir;

    static List<String> lines(byte[] data) throws IOException {
        List<String> out = new ArrayList<>();
        LineStream.forEach(new ByteArrayInputStream(data), out::add);
        return out;
    }

    @Test
    void jsonListsClassNumbersAndRankedRecommendations() throws Exception {
        CliTest.Result r = CliTest.headroom("diagnose", FIXTURES.resolve("kohya-dreambooth-8gb.log").toString(), "--json");
        assertEquals(0, r.status(), r.err());
        JsonNode j = new ObjectMapper().readTree(r.out());
        JsonNode inc = j.path("incidents").get(0);
        assertEquals("oom_capacity", inc.path("class").asText());
        assertEquals(146L << 20, inc.path("numbers").path("requested_bytes").asLong());
        assertEquals(8L << 30, inc.path("numbers").path("total_bytes").asLong());
        assertEquals("kohya sd-scripts", inc.path("job").path("tool").asText());
        assertEquals(1, inc.path("recommendations").get(0).path("rank").asInt());
        assertTrue(inc.path("recommendations").size() >= 3);
    }

    @Test
    void cleanLogSaysNoMemoryErrorAndNeverInventsOne() throws Exception {
        CliTest.Result r = CliTest.headroom("diagnose", FIXTURES.resolve("comfyui-no-memory-error.log").toString());
        assertEquals(0, r.status());
        assertTrue(r.out().startsWith("No memory error found in 10 lines."), r.out());
        assertTrue(r.out().contains("ConnectionResetError"), r.out());
    }

    @Test
    void missingFileAndBadSizeAreOneLineErrors() throws Exception {
        CliTest.Result r = CliTest.headroom("diagnose", dir.resolve("nope.log").toString());
        assertEquals(2, r.status());
        assertEquals(1, r.err().lines().count(), r.err());
        r = CliTest.headroom("diagnose", FIXTURES.resolve("directml-webui.log").toString(), "--gpu-memory", "lots");
        assertEquals(2, r.status());
        assertTrue(r.err().contains("--gpu-memory"), r.err());
    }

    @Test
    void ansiColoursAndProgressBarsAreIgnored() throws IOException {
        String noisy = "\u001B[32mgot prompt\u001B[0m\n"
                + " 47%|\u2588\u2588\u2588\u2588\u258c     | 14/30 [00:09<00:10,  1.49it/s]\r 50%|\u2588\u2588\u2588\u2588\u2588     | 15/30 [00:10<00:10,  1.49it/s]\r"
                + "\u001B[31m" + OOM + "\u001B[0m\n";
        var s = new dev.headroom.core.diagnose.LogScanner(null);
        for (String l : lines(noisy.getBytes(StandardCharsets.UTF_8))) s.line(l);
        var d = s.finish();
        assertEquals(1, d.incidents().size());
        assertEquals(256L << 20, d.incidents().getFirst().numbers().requested());
        assertEquals("ComfyUI", d.incidents().getFirst().job().tool());
        assertTrue(!d.incidents().getFirst().message().contains("\u001B"));
    }

    @Test
    void binaryGarbageAndInvalidUtf8DoNotHideTheIncident() throws IOException {
        Random rnd = new Random(Randoms.seed());
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        for (int i = 0; i < 200; i++) {
            byte[] junk = new byte[rnd.nextInt(300)];
            rnd.nextBytes(junk);
            b.write(junk);
            b.write('\n');
        }
        b.write(new byte[] {(byte) 0xC3, (byte) 0x28, (byte) 0xFF, '\n'});   // invalid UTF-8
        b.write(OOM.getBytes(StandardCharsets.UTF_8));
        b.write('\n');
        var s = new dev.headroom.core.diagnose.LogScanner(null);
        for (String l : lines(b.toByteArray())) s.line(l);
        var d = s.finish();
        assertEquals(1, d.incidents().size(), d.incidents().toString());
        assertEquals("oom_capacity", d.incidents().getFirst().kind().slug());
    }

    @Test
    void aLineLongerThanTheLimitIsCutNotHeld() throws IOException {
        byte[] huge = new byte[LineStream.MAX_LINE * 3];
        java.util.Arrays.fill(huge, (byte) 'a');
        List<String> got = lines((new String(huge, StandardCharsets.US_ASCII) + "\nnext\n").getBytes(StandardCharsets.US_ASCII));
        assertEquals(2, got.size());
        assertEquals(LineStream.MAX_LINE, got.get(0).length());
        assertEquals("next", got.get(1));
    }

    /** A 1 GiB log through stdin into a JVM with a 64 MiB heap: it must finish and find the incidents. */
    @Test
    @Tag("slow")
    void aGigabyteLogIsReadInBoundedMemory() throws Exception {
        List<String> cmd = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx64m", "--enable-native-access=ALL-UNNAMED",
                "--add-modules", "jdk.incubator.vector", "-cp", System.getProperty("java.class.path"), "dev.headroom.cli.Main", "diagnose", "--json");
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.DISCARD).start();
        long t0 = System.nanoTime();
        byte[] filler = (" 47%|\u2588\u2588\u2588\u2588\u258c     | 14/30 [00:09<00:10,  1.49it/s] model loaded in 1.2s, 1024x1024, batch_size 2\n")
                .getBytes(StandardCharsets.UTF_8);
        long target = 1L << 30;
        Thread writer = Thread.ofPlatform().start(() -> {
            try (OutputStream out = new java.io.BufferedOutputStream(p.getOutputStream(), 1 << 20)) {
                long w = 0;
                byte[] block = new byte[filler.length * 8192];
                for (int i = 0; i < 8192; i++) System.arraycopy(filler, 0, block, i * filler.length, filler.length);
                int blocks = 0;
                while (w < target) {
                    out.write(block);
                    w += block.length;
                    if (++blocks % 100 == 0) out.write((OOM + "\n").getBytes(StandardCharsets.UTF_8));
                }
                out.write("RuntimeError: CUDA error: an illegal memory access was encountered\n".getBytes(StandardCharsets.UTF_8));
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
        byte[] out;
        try (InputStream in = p.getInputStream()) {
            out = in.readAllBytes();
        }
        writer.join();
        assertEquals(0, p.waitFor());
        double secs = (System.nanoTime() - t0) / 1e9;
        JsonNode j = new ObjectMapper().readTree(out);
        System.out.printf("1 GiB log, %d lines, read in %.1f s (%.0f MB/s) with a 64 MiB heap%n", j.path("lines").asLong(), secs, 1024 / secs * 1.048576);
        assertEquals(2, j.path("incidents").size(), "the repeated OOM once, and the illegal access");
        assertTrue(j.path("incidents").get(0).path("times").asInt() > 10, "the OOM repeats every 100 blocks");
        assertEquals("1024x1024", j.path("incidents").get(0).path("job").path("width").asInt() + "x" + j.path("incidents").get(0).path("job").path("height").asInt());
    }
}
