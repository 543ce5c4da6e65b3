package dev.headroom.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.headroom.testing.Golden;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** upscale's outputs: formats by extension or --format, folders, phases, no file from a killed job, a bounded heap. */
class UpscaleOutputTest {
    @TempDir
    static Path dir;

    static String model() {
        return Golden.dir().resolve("srvgg-x4.pth").toString();
    }

    static Path photo(String name, int w, int h, boolean alpha) throws Exception {
        BufferedImage img = new BufferedImage(w, h, alpha ? BufferedImage.TYPE_INT_ARGB : BufferedImage.TYPE_INT_RGB);
        Random r = new Random(7);
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) img.setRGB(x, y, (alpha ? (x * 5) << 24 : 0) | (x * 3 % 256) << 16 | (y * 2 % 256) << 8 | r.nextInt(256));
        Path p = dir.resolve(name);
        ImageIO.write(img, "png", p.toFile());
        return p;
    }

    @Test
    void everyFormatByExtensionOrFormatWithPhasesInJson() throws Exception {
        Path in = photo("p.png", 21, 13, false);
        for (String name : new String[] {"o.png", "o.jpg", "o.jpeg", "o.webp", "o.tif", "o.tiff"}) {
            Path out = dir.resolve(name);
            CliTest.Result r = CliTest.headroom("upscale", in.toString(), "-o", out.toString(), "--model", model(), "--json", "--tile", "8", "--overlap", "2");
            assertEquals(0, r.status(), name + ": " + r.err());
            BufferedImage back = ImageIO.read(out.toFile());
            assertEquals(84, back.getWidth(), name);
            assertEquals(52, back.getHeight(), name);
            JsonNode img = new ObjectMapper().readTree(r.out()).get("images").get(0);
            for (String phase : new String[] {"read", "device_wait", "blend", "rows_to_writer", "finish_write", "encode_cpu_all_threads", "file_write"}) {
                assertTrue(img.get("phases_seconds").get(phase).asDouble() >= 0, name + " " + phase);
            }
            assertTrue(img.get("input_decode").asText().startsWith("rows"), name + ": a PNG input streams by rows: " + img.get("input_decode"));
            double mps = 84 * 52 / 1e6 / img.get("seconds").asDouble();
            assertEquals(mps, img.get("megapixels_per_second").asDouble(), mps * 0.01 + 1e-4, name);
        }
        // into a folder: the input's name with the format's extension
        Path folder = Files.createDirectories(dir.resolve("folder"));
        CliTest.Result r = CliTest.headroom("upscale", in.toString(), "-o", folder.toString(), "--model", model(), "--format", "webp", "--quality", "80", "-q");
        assertEquals(0, r.status(), r.err());
        assertEquals(84, ImageIO.read(folder.resolve("p.webp").toFile()).getWidth());
        // a folder that holds the input, in the input's format: the output would be the input itself
        byte[] before = Files.readAllBytes(in);
        CliTest.Result same = CliTest.headroom("upscale", in.toString(), "-o", in.getParent().toString(), "--model", model(), "--format", "png", "-q");
        assertEquals(2, same.status(), same.err());
        assertTrue(same.err().contains("is also an input"), same.err());
        assertArrayEquals(before, Files.readAllBytes(in));
    }

    /** A JPEG of the photo: baseline, or progressive. */
    static Path jpeg(String name, int w, int h, boolean progressive) throws Exception {
        BufferedImage img = ImageIO.read(photo(name + ".png", w, h, false).toFile());
        Path p = dir.resolve(name);
        javax.imageio.ImageWriter writer = ImageIO.getImageWritersByFormatName("jpeg").next();
        try (var out = ImageIO.createImageOutputStream(p.toFile())) {
            writer.setOutput(out);
            javax.imageio.ImageWriteParam param = writer.getDefaultWriteParam();
            if (progressive) param.setProgressiveMode(javax.imageio.ImageWriteParam.MODE_DEFAULT);
            writer.write(null, new javax.imageio.IIOImage(img, null, null), param);
        } finally {
            writer.dispose();
        }
        return p;
    }

    @Test
    void aBaselineJpegStreamsByRowsToTheWholeDecodesPixelsAndJsonSaysWhyAProgressiveOneDoesNot() throws Exception {
        Path base = jpeg("base.jpg", 37, 29, false), prog = jpeg("prog.jpg", 19, 11, true);
        Path folder = Files.createDirectories(dir.resolve("jpegs"));
        CliTest.Result r = CliTest.headroom("upscale", base.toString(), prog.toString(), "-o", folder.toString(), "--format", "png", "--model", model(),
                "--json", "--tile", "8", "--overlap", "2");
        assertEquals(0, r.status(), r.err());
        JsonNode imgs = new ObjectMapper().readTree(r.out()).get("images");
        assertTrue(imgs.get(0).get("input_decode").asText().startsWith("rows"), imgs.get(0).toString());
        assertTrue(imgs.get(1).get("input_decode").asText().startsWith("whole: progressive JPEG"), imgs.get(1).toString());
        // --lenient reads the baseline JPEG whole: the same pixels out
        Path whole = dir.resolve("base-whole.png");
        CliTest.Result w = CliTest.headroom("upscale", base.toString(), "-o", whole.toString(), "--model", model(), "--tile", "8", "--overlap", "2", "--lenient", "-q");
        assertEquals(0, w.status(), w.err());
        BufferedImage a = ImageIO.read(folder.resolve("base.png").toFile()), b = ImageIO.read(whole.toFile());
        assertEquals(148, a.getWidth());
        assertArrayEquals(b.getRaster().getPixels(0, 0, 148, 116, (int[]) null), a.getRaster().getPixels(0, 0, 148, 116, (int[]) null));
    }

    @Test
    void formatAndExtensionMustAgree() throws Exception {
        Path in = photo("q.png", 9, 9, true);
        Object[][] bad = {
                {new String[] {"-o", dir.resolve("m.png").toString(), "--format", "jpeg"}, "make them agree", dir.resolve("m.png")},
                {new String[] {"-o", dir.resolve("m.bmp").toString()}, "from its extension", dir.resolve("m.bmp")},
                {new String[] {"-o", dir.resolve("m2").toString(), "--format", "png"}, "from its extension", dir.resolve("m2")},
                {new String[] {"-o", dir.resolve("m.png").toString(), "--quality", "80"}, "--quality applies", dir.resolve("m.png")},
                {new String[] {"-o", dir.resolve("m.jpg").toString()}, "JPEG has no alpha", dir.resolve("m.jpg")},
                {new String[] {"-o", dir.resolve("m.png").toString(), "--format", "gif"}, "--format gif", dir.resolve("m.png")},
                {new String[] {"-o", dir.resolve("m.png").toString(), "--compression", "12"}, "--compression 12", dir.resolve("m.png")},
        };
        for (Object[] b : bad) {
            List<String> args = new ArrayList<>(List.of("upscale", in.toString(), "--model", model()));
            args.addAll(List.of((String[]) b[0]));
            CliTest.assertRefused(CliTest.headroom(args.toArray(String[]::new)), (String) b[1], (Path) b[2]);
        }
    }

    /** The launcher's JVM, as CliTest starts it, with extra JVM options. */
    private static ProcessBuilder java(List<String> jvm, String... args) {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"));
        cmd.addAll(jvm);
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), "dev.headroom.cli.Main"));
        cmd.addAll(List.of(args));
        return new ProcessBuilder(cmd).redirectErrorStream(true);
    }

    @Test
    @Tag("slow")
    void aJobKilledHalfWayLeavesNoOutput() throws Exception {
        Path in = photo("k.png", 400, 400, false);
        Path sub = Files.createDirectories(dir.resolve("killed"));   // the killed job's temporary file stays there (i21's sweep removes such)
        Path out = sub.resolve("killed.png");
        Process p = java(List.of(), "upscale", in.toString(), "-o", out.toString(), "--model", model(), "--device", "cpu", "--tile", "32", "-q")
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        // wait until the writer has its temporary file (rows are being written), then kill the process
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        boolean writing = false;
        while (!writing && p.isAlive() && System.nanoTime() < deadline) {
            try (var files = Files.list(sub)) {
                writing = files.anyMatch(f -> f.getFileName().toString().startsWith(".killed.png") && sizeOf(f) > 0);
            }
            Thread.sleep(20);
        }
        assertTrue(writing, "the job started writing rows before it ended");
        p.destroyForcibly().waitFor();
        assertFalse(Files.exists(out), "no output file at the target after the job was killed");
    }

    private static long sizeOf(Path f) {
        try {
            return Files.size(f);
        } catch (java.io.IOException e) {
            return 0;
        }
    }

    @Test
    @Tag("slow")
    void aLargeUpscaleRunsInAHeapSmallerThanItsOutput() throws Exception {
        // 800x800 x4 = 3200x3200x3: 123 MB of floats for the whole output (31 MB as 8-bit samples), more
        // than the whole heap. Streamed, the heap holds the input, one tile row of output (20 MB) and the
        // encoder's pieces.
        Path in = photo("big.png", 800, 800, false);
        Path out = dir.resolve("big-x4.png");
        Process p = java(List.of("-Xmx96m"), "upscale", in.toString(), "-o", out.toString(), "--model", model(), "--device", "cpu",
                "--tile", "128", "-q").start();
        String log = new String(p.getInputStream().readAllBytes());
        assertEquals(0, p.waitFor(), log);
        BufferedImage back = ImageIO.read(out.toFile());
        assertEquals(3200, back.getWidth());
        assertEquals(3200, back.getHeight());
    }

    @Test
    void withoutTileTheWindowOfOutputRowsStaysWithinItsHostBudget() {
        // a 4096x4096 x4 job on a big GPU fits 2048 tiles; its streaming window would be 1.6 GB of floats:
        // tiles of 1024 (832 long: 0.65 GB of window and 2 x 0.13 GB in flight) fit the budget
        assertEquals(1024, UpscaleCommand.hostCapped(2048, 16, 4096, 4096, 4, 3));
        assertEquals(512, UpscaleCommand.hostCapped(512, 16, 4096, 4096, 4, 3), "a tile that fits is kept");
        assertEquals(512, UpscaleCommand.hostCapped(2048, 16, 8192, 8192, 4, 3));
        assertEquals(2048, UpscaleCommand.hostCapped(2048, 16, 2048, 2048, 2, 3), "small outputs keep big tiles");
        for (int size : new int[] {1000, 4096, 8192, 20000}) {
            int t = UpscaleCommand.hostCapped(2048, 16, size, size, 4, 3);
            int len = dev.headroom.core.tiling.TileGrid.axis(size, t, 16, 1).getFirst().length() * 4;
            long window = 4L * 3 * ((long) size * 4 * len + 2L * len * len);
            assertTrue(t == 64 || window <= UpscaleCommand.HOST_WINDOW_BYTES, size + ": tile " + t + ", window " + window);
        }
    }
}
