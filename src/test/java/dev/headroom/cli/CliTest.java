package dev.headroom.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.headroom.models.DefaultModel;
import dev.headroom.testing.Golden;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The command line as a user meets it: a separate JVM, real files, exit status and stderr.
 * Every bad input must end in one line on stderr, status 2, no stack trace and no file left behind.
 */
class CliTest {
    @TempDir
    static Path dir;

    record Result(int status, String out, String err) {}

    static Result headroom(String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"), "dev.headroom.cli.Main"));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).start();
        byte[] out = p.getInputStream().readAllBytes();
        byte[] err = p.getErrorStream().readAllBytes();
        int status = p.waitFor();
        String e = new String(err, StandardCharsets.UTF_8).lines()
                .filter(l -> !l.startsWith("WARNING: Using incubator modules")).reduce("", (a, b) -> a + b + "\n");
        return new Result(status, new String(out, StandardCharsets.UTF_8), e);
    }

    static Path photo;

    @BeforeAll
    static void images() throws IOException {
        BufferedImage img = new BufferedImage(20, 14, BufferedImage.TYPE_INT_ARGB);
        for (int y = 0; y < 14; y++) for (int x = 0; x < 20; x++) img.setRGB(x, y, (x * 12) << 24 | (x * 10) << 16 | (y * 15) << 8 | 90);
        photo = dir.resolve("small.png");
        ImageIO.write(img, "png", photo.toFile());
    }

    /** One line, "headroom: ..." mentioning {@code mention}, status 2, no file and no temporary file left. */
    static void assertRefused(Result r, String mention, Path mustNotExist) throws IOException {
        assertEquals(2, r.status(), r.err());
        List<String> lines = r.err().lines().toList();
        assertEquals(1, lines.size(), "one line, no stack trace:\n" + r.err());
        assertTrue(lines.getFirst().startsWith("headroom: "), r.err());
        assertTrue(lines.getFirst().contains(mention), "should mention '" + mention + "': " + r.err());
        if (mustNotExist != null) {
            assertFalse(Files.exists(mustNotExist), mustNotExist + " must not exist");
            Path parent = mustNotExist.toAbsolutePath().getParent();
            if (Files.isDirectory(parent)) {
                try (var s = Files.list(parent)) {
                    assertTrue(s.noneMatch(f -> f.getFileName().toString().endsWith(".tmp")), "temporary file left in " + parent);
                }
            }
        }
    }

    @Test
    void upscalesWithAPyTorchModelAndKeepsAlpha() throws Exception {
        Path out = dir.resolve("small-x4.png");
        Result r = headroom("upscale", photo.toString(), "-o", out.toString(), "--model",
                Golden.dir().resolve("srvgg-x4.pth").toString(), "--tile", "8", "--overlap", "2", "--json");
        assertEquals(0, r.status(), r.err());
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertEquals("SRVGGNetCompact", j.path("architecture").asText());
        assertEquals(6, j.path("images").get(0).path("tiles").asInt(), "20x14 in tiles of 8 overlapping 2: 3 x 2");
        BufferedImage img = ImageIO.read(out.toFile());
        assertEquals(80, img.getWidth());
        assertEquals(56, img.getHeight());
        assertTrue(img.getColorModel().hasAlpha());
        // the same tiles three per run: the same image
        Path batched = dir.resolve("small-x4-batched.png");
        r = headroom("upscale", photo.toString(), "-o", batched.toString(), "--model", Golden.dir().resolve("srvgg-x4.pth").toString(),
                "--tile", "8", "--overlap", "2", "--batch", "3", "--json");
        assertEquals(0, r.status(), r.err());
        assertEquals(3, new ObjectMapper().readTree(r.out()).path("images").get(0).path("batch").asInt());
        assertArrayEquals(Files.readAllBytes(out), Files.readAllBytes(batched));
        assertRefused(headroom("upscale", photo.toString(), "-o", dir.resolve("none.png").toString(), "--batch", "0"), "--batch 0",
                dir.resolve("none.png"));
    }

    @Test
    void sixteenBitGrayStaysSixteenBitGray() throws Exception {
        BufferedImage g16 = new BufferedImage(10, 9, BufferedImage.TYPE_USHORT_GRAY);
        for (int y = 0; y < 9; y++) for (int x = 0; x < 10; x++) g16.getRaster().setSample(x, y, 0, x * 6000 + y * 300);
        Path in = dir.resolve("gray16.png"), out = dir.resolve("gray16-x4.png");
        ImageIO.write(g16, "png", in.toFile());
        Result r = headroom("upscale", in.toString(), "-o", out.toString(), "--model", Golden.dir().resolve("srvgg-x4.pth").toString(), "-q");
        assertEquals(0, r.status(), r.err());
        BufferedImage img = ImageIO.read(out.toFile());
        assertEquals(1, img.getRaster().getNumBands());
        assertEquals(16, img.getColorModel().getComponentSize(0));
        assertEquals(40, img.getWidth());
    }

    @Test
    void defaultModelUpscalesAPhotograph() throws Exception {
        Path out = dir.resolve("default.png");
        Result r = headroom("upscale", photo.toString(), "-o", out.toString(), "--quiet");
        assertEquals(0, r.status(), r.err());
        assertEquals(40, ImageIO.read(out.toFile()).getWidth());
        Result inspect = headroom("models", "inspect", DefaultModel.file().toString(), "--json");
        JsonNode j = new ObjectMapper().readTree(inspect.out());
        assertEquals("RDN", j.path("architecture").asText());
        assertEquals(2619635, j.path("parameters").asLong());
        assertEquals(2, j.path("scale").asInt());
    }

    @Test
    void aMemoryTraceRendersAsHtmlAndPng() throws Exception {
        Path out = dir.resolve("traced.png"), trace = dir.resolve("memory.jsonl");
        Result r = headroom("upscale", photo.toString(), "-o", out.toString(), "--model", Golden.dir().resolve("srvgg-x4.pth").toString(),
                "--tile", "8", "--overlap", "2", "--memory-trace", trace.toString(), "--vram-budget", "1GiB", "--json");
        assertEquals(0, r.status(), r.err());
        JsonNode mem = new ObjectMapper().readTree(r.out()).path("memory");
        assertEquals(1L << 30, mem.path("budget_bytes").asLong());
        assertTrue(mem.path("peak_bytes_by_category").path("activations").asLong() > 0, r.out());
        List<String> lines = Files.readAllLines(trace);
        assertTrue(lines.size() > 20 && lines.stream().anyMatch(l -> l.contains("\"kind\":\"alloc\"")), "trace has allocations");
        Path html = dir.resolve("report.html"), png = dir.resolve("report.png");
        Result h = headroom("memory-report", trace.toString(), "-o", html.toString());
        assertEquals(0, h.status(), h.err());
        String page = Files.readString(html);
        assertTrue(page.contains("<svg") && page.contains("peak") && page.contains("activations"), page);
        Result p = headroom("memory-report", trace.toString(), "-o", png.toString());
        assertEquals(0, p.status(), p.err());
        assertEquals(1100, ImageIO.read(png.toFile()).getWidth());
        Path junk = dir.resolve("junk.jsonl");
        Files.writeString(junk, "this is not json\n");
        assertRefused(headroom("memory-report", junk.toString(), "-o", dir.resolve("junk.html").toString()), "not a trace event", dir.resolve("junk.html"));
        assertRefused(headroom("upscale", photo.toString(), "-o", dir.resolve("b.png").toString(), "--vram-budget", "lots"), "--vram-budget", dir.resolve("b.png"));
    }

    @Test
    void truncatedModelIsRefused() throws Exception {
        Path bad = dir.resolve("truncated.h5");
        Files.write(bad, java.util.Arrays.copyOf(Files.readAllBytes(DefaultModel.file()), 200_000));
        Path out = dir.resolve("t.png");
        assertRefused(headroom("upscale", photo.toString(), "-o", out.toString(), "--model", bad.toString()), "truncated.h5", out);
    }

    @Test
    void corruptedSafetensorsIsRefused() throws Exception {
        byte[] good = Files.readAllBytes(Golden.dir().resolve("srvgg-x4.fp16.safetensors"));
        Path bad = dir.resolve("cut.safetensors");
        Files.write(bad, java.util.Arrays.copyOf(good, good.length - 100));
        Path out = dir.resolve("s.png");
        assertRefused(headroom("upscale", photo.toString(), "-o", out.toString(), "--model", bad.toString()), "truncated", out);
    }

    @Test
    void pickleNamingAForeignClassIsRefusedWithoutRunningIt() throws Exception {
        // protocol 2: GLOBAL os.system, the string "touch PWNED", TUPLE1, REDUCE, STOP
        ByteArrayOutputStream pkl = new ByteArrayOutputStream();
        pkl.write(new byte[] {(byte) 0x80, 2});
        pkl.write("cos\nsystem\n".getBytes(StandardCharsets.US_ASCII));
        byte[] cmd = ("touch " + dir.resolve("PWNED")).getBytes(StandardCharsets.US_ASCII);
        pkl.write(0x8c);
        pkl.write(cmd.length);
        pkl.write(cmd);
        pkl.write(new byte[] {(byte) 0x85, 'R', '.'});
        Path bad = dir.resolve("evil.pth");
        try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(bad))) {
            z.putNextEntry(new ZipEntry("archive/data.pkl"));
            z.write(pkl.toByteArray());
            z.closeEntry();
        }
        Path out = dir.resolve("e.png");
        assertRefused(headroom("upscale", photo.toString(), "-o", out.toString(), "--model", bad.toString()), "os.system", out);
        assertFalse(Files.exists(dir.resolve("PWNED")));
    }

    @Test
    void nonImageIsRefused() throws Exception {
        Path txt = dir.resolve("notes.png");
        Files.writeString(txt, "this is not a picture");
        Path out = dir.resolve("n.png");
        assertRefused(headroom("upscale", txt.toString(), "-o", out.toString(), "--model", Golden.dir().resolve("srvgg-x4.pth").toString()), "notes.png", out);
    }

    @Test
    void zeroSizeImageIsRefused() throws Exception {
        Path zero = dir.resolve("zero.png");
        Files.write(zero, pngWithSize(0, 5));
        Path out = dir.resolve("z.png");
        assertRefused(headroom("upscale", zero.toString(), "-o", out.toString(), "--model", Golden.dir().resolve("srvgg-x4.pth").toString()), "zero.png", out);
    }

    @Test
    void imageOverThePixelLimitIsRefusedBeforeDecoding() throws Exception {
        Path out = dir.resolve("big.png");
        assertRefused(headroom("upscale", photo.toString(), "-o", out.toString(), "--max-pixels", "100",
                "--model", Golden.dir().resolve("srvgg-x4.pth").toString()), "over the limit of 100", out);
    }

    @Test
    void unwritableOutputIsRefusedBeforeAnyWork() throws Exception {
        Path out = dir.resolve("no-such-folder").resolve("x.png");
        assertRefused(headroom("upscale", photo.toString(), "-o", out.toString()), "does not exist or is not writable", out);
    }

    @Test
    void cudaWithoutAGpuSaysWhy() throws Exception {
        Path out = dir.resolve("c.png");
        assertRefused(headroom("upscale", photo.toString(), "-o", out.toString(), "--device", "cuda"), "--device cuda: ", out);
    }

    @Test
    void halfPrecisionOnTheCpuIsRefused() throws Exception {
        Path out = dir.resolve("h.png");
        assertRefused(headroom("upscale", photo.toString(), "-o", out.toString(), "--device", "cpu", "--precision", "fp16"), "fp32 only", out);
    }

    @Test
    void verboseShowsTheStackTrace() throws Exception {
        Path txt = dir.resolve("notes2.png");
        Files.writeString(txt, "still not a picture");
        Result r = headroom("upscale", txt.toString(), "-o", dir.resolve("v.png").toString(), "--verbose",
                "--model", Golden.dir().resolve("srvgg-x4.pth").toString());
        assertEquals(2, r.status());
        assertTrue(r.err().lines().count() > 3, r.err());
    }

    /** A PNG signature and an IHDR chunk with the given size, nothing else. */
    static byte[] pngWithSize(int w, int h) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        b.write(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'});
        java.nio.ByteBuffer ihdr = java.nio.ByteBuffer.allocate(17);
        ihdr.put("IHDR".getBytes(StandardCharsets.US_ASCII)).putInt(w).putInt(h).put((byte) 8).put((byte) 2).put((byte) 0).put((byte) 0).put((byte) 0);
        CRC32 crc = new CRC32();
        crc.update(ihdr.array());
        b.write(java.nio.ByteBuffer.allocate(4).putInt(13).array());
        b.write(ihdr.array());
        b.write(java.nio.ByteBuffer.allocate(4).putInt((int) crc.getValue()).array());
        return b.toByteArray();
    }
}
