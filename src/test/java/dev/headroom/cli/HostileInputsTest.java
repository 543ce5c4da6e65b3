package dev.headroom.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.testing.Golden;
import dev.headroom.testing.HostileFiles;
import dev.headroom.testing.HostileFiles.Pickle;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicContainer;
import org.junit.jupiter.api.DynamicNode;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 21's hostile and unusual inputs, a generator per class of failure, every file made here.
 * Each case runs the real command line in its own JVM with a 512 MiB heap, and must end within
 * 10 s either with exit status 2 and one line on stderr (no stack trace, no file left behind) or
 * with the right output. {@code -Dhostile.classpath=...} runs the same cases against another build
 * (how the before/after counts in the note were taken); the counts per class are printed.
 */
class HostileInputsTest {
    @TempDir
    static Path root;

    static Path photo, model;
    static final Map<String, int[]> COUNTS = new TreeMap<>();   // class -> {passed, failed}

    record Result(int status, byte[] out, String err, double seconds) {}

    @BeforeAll
    static void setUp() throws IOException {
        photo = root.resolve("photo.png");
        ImageIO.write(HostileFiles.picture(24, 16), "png", photo.toFile());
        model = Golden.dir().resolve("srvgg-x4.pth").toAbsolutePath();
    }

    @AfterAll
    static void counts() {
        COUNTS.forEach((k, v) -> System.out.printf("hostile inputs, %s: %d passed, %d failed%n", k, v[0], v[1]));
    }

    /** Runs headroom in a fresh JVM (512 MiB heap) in {@code dir}; killed after 10 s. */
    static Result headroom(Path dir, Map<String, String> env, String... args) throws Exception {
        String cp = System.getProperty("hostile.classpath", System.getProperty("java.class.path"));
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx512m",
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-cp", cp, "dev.headroom.cli.Main"));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile());
        pb.environment().putAll(env);
        Path errFile = Files.createTempFile(root, "err", ".txt"), outFile = Files.createTempFile(root, "out", ".bin");
        pb.redirectError(errFile.toFile());
        pb.redirectOutput(outFile.toFile());   // files, not pipes: a hung process must not block the reader past the timeout
        pb.redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        long t0 = System.nanoTime();
        Process p = pb.start();
        boolean done = p.waitFor(10, TimeUnit.SECONDS);
        if (!done) {
            p.destroyForcibly().waitFor();
        }
        double secs = (System.nanoTime() - t0) / 1e9;
        String err = Files.readString(errFile, StandardCharsets.ISO_8859_1).lines()
                .filter(l -> !l.startsWith("WARNING: Using incubator modules")).reduce("", (a, b) -> a + b + "\n");
        byte[] out = Files.readAllBytes(outFile);
        Files.delete(errFile);
        Files.delete(outFile);
        assertTrue(done, "still running after 10 s: " + String.join(" ", args));
        return new Result(p.exitValue(), out, err, secs);
    }

    static Result headroom(Path dir, String... args) throws Exception {
        return headroom(dir, Map.of(), args);
    }

    /** Exit 2, one line starting "headroom: " that mentions {@code mention}, and the folder holds only {@code keep}. */
    static void refused(Result r, String mention, Path dir, Set<String> keep) throws IOException {
        assertEquals(2, r.status(), r.err());
        List<String> lines = r.err().lines().toList();
        assertEquals(1, lines.size(), "one line, no stack trace:\n" + r.err());
        assertTrue(lines.getFirst().startsWith("headroom: "), r.err());
        assertTrue(lines.getFirst().toLowerCase().contains(mention.toLowerCase()), "should mention '" + mention + "': " + r.err());
        leftOnly(dir, keep);
    }

    static void leftOnly(Path dir, Set<String> keep) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            List<String> extra = s.map(p -> p.getFileName().toString()).filter(n -> !keep.contains(n)).sorted().toList();
            assertEquals(List.of(), extra, "left behind in " + dir);
        }
    }

    /** A fresh folder for one case, with the photo copied in. */
    static Path folder(String name) throws IOException {
        Path d = Files.createDirectory(root.resolve(name));
        Files.copy(photo, d.resolve("photo.png"));
        return d;
    }

    interface Body {
        void run() throws Exception;
    }

    static DynamicTest test(String klass, String name, Body body) {
        return DynamicTest.dynamicTest(name, () -> {
            int[] c = COUNTS.computeIfAbsent(klass, k -> new int[2]);
            try {
                body.run();
                c[0]++;
            } catch (Throwable t) {
                c[1]++;
                throw t;
            }
        });
    }

    static DynamicContainer klass(String name, DynamicTest... tests) {
        return DynamicContainer.dynamicContainer(name, Arrays.asList(tests));
    }

    @TestFactory
    List<DynamicNode> hostileInputs() {
        return List.of(
                klass("1 crash", crashes()),
                klass("2 blow-up", blowUps()),
                klass("3 silently wrong", silentlyWrong()),
                klass("4 files left behind", leftBehind()),
                klass("5 exit codes and messages", messages()),
                klass("6 launcher", launcher()),
                klass("7 links", links()));
    }

    // ---- class 1: a crash with a stack trace ------------------------------------------------------------

    static DynamicTest[] crashes() {
        String k = "1 crash";
        return new DynamicTest[] {
            test(k, "pickle of tuples nested a million deep", () -> {
                Path d = folder("deep-tuples");
                Pickle p = new Pickle().op('}').str("body.0.weight").op(')');
                for (int i = 0; i < 1_000_000; i++) p.op(0x85);
                HostileFiles.checkpoint(d.resolve("m.pth"), p.op('s', '.').bytes(), false);
                refused(headroom(d, "upscale", "photo.png", "-o", "out.png", "--model", "m.pth"), "m.pth", d, Set.of("photo.png", "m.pth"));
            }),
            test(k, "pickle dict keyed by a tuple nested a million deep", () -> {
                Path d = folder("deep-key");
                Pickle p = new Pickle().op('}').op(')');
                for (int i = 0; i < 1_000_000; i++) p.op(0x85);
                HostileFiles.checkpoint(d.resolve("m.pth"), p.str("v").op('s', '.').bytes(), false);
                refused(headroom(d, "models", "inspect", "m.pth"), "m.pth", d, Set.of("photo.png", "m.pth"));
            }),
            test(k, "pickle list that contains itself, as a key", () -> {
                Path d = folder("self-list");
                byte[] pkl = new Pickle().op('}').op(']', 'q', 0, 'h', 0, 'a').str("v").op('s', '.').bytes();
                HostileFiles.checkpoint(d.resolve("m.pth"), pkl, false);
                refused(headroom(d, "models", "inspect", "m.pth"), "m.pth", d, Set.of("photo.png", "m.pth"));
            }),
            test(k, "pickle list that contains itself, as a value", () -> {
                Path d = folder("self-value");
                byte[] pkl = new Pickle().op('}').str("params").op(']', 'q', 0, 'h', 0, 'a', 's', '.').bytes();
                HostileFiles.checkpoint(d.resolve("m.pth"), pkl, false);
                refused(headroom(d, "models", "inspect", "m.pth"), "m.pth", d, Set.of("photo.png", "m.pth"));
            }),
            test(k, "safetensors header nested 100,000 deep", () -> {
                Path d = folder("deep-json");
                HostileFiles.safetensors(d.resolve("m.safetensors"), "{\"a\":" + "[".repeat(100_000) + "]".repeat(100_000) + "}", new byte[0]);
                refused(headroom(d, "models", "inspect", "m.safetensors"), "m.safetensors", d, Set.of("photo.png", "m.safetensors"));
            }),
            test(k, "TF.js model.json nested 100,000 deep", () -> {
                Path d = folder("deep-tfjs");
                Files.writeString(d.resolve("model.json"), "{\"modelTopology\":" + "{\"a\":".repeat(100_000) + "1" + "}".repeat(100_000) + ",\"weightsManifest\":[]}");
                refused(headroom(d, "models", "inspect", "model.json"), "model.json", d, Set.of("photo.png", "model.json"));
            }),
        };
    }

    // ---- class 2: memory and time blow-ups from small files and options ----------------------------------

    static DynamicTest[] blowUps() {
        String k = "2 blow-up";
        return new DynamicTest[] {
            test(k, "zip entry that inflates to 768 MiB", () -> {
                Path d = folder("zip-bomb");
                HostileFiles.zipBomb(d.resolve("m.pth"), 768L << 20);
                refused(headroom(d, "models", "inspect", "m.pth"), "m.pth", d, Set.of("photo.png", "m.pth"));
            }),
            test(k, "3,000 tensors over the same 1 MiB storage", () -> {
                Path d = folder("aliases");
                Pickle p = new Pickle().op('}').op('(');
                for (int i = 0; i < 3000; i++) p.str("body." + i + ".weight").tensor("0", 1 << 18, 0, new long[] {64, 64, 8, 8}, new long[] {4096, 64, 8, 1});
                HostileFiles.checkpoint(d.resolve("m.pth"), p.op('u', '.').bytes(), false, "0", new byte[1 << 20]);
                refused(headroom(d, "models", "inspect", "m.pth"), "m.pth", d, Set.of("photo.png", "m.pth"));
            }),
            test(k, "a stride-0 view of one float as 16384x16384", () -> {
                Path d = folder("stride0");
                byte[] pkl = new Pickle().op('}').str("body.0.weight").tensor("0", 1, 0, new long[] {16384, 16384, 1, 1}, new long[] {0, 0, 0, 0}).op('s', '.').bytes();
                HostileFiles.checkpoint(d.resolve("m.pth"), pkl, false, "0", new byte[4]);
                refused(headroom(d, "models", "inspect", "m.pth"), "m.pth", d, Set.of("photo.png", "m.pth"));
            }),
            test(k, "pickle of 30 million empty lists", () -> {
                Path d = folder("many-lists");
                byte[] ops = new byte[30_000_000];
                Arrays.fill(ops, (byte) ']');
                Pickle p = new Pickle();
                byte[] head = p.bytes();
                byte[] pkl = new byte[head.length + ops.length + 1];
                System.arraycopy(head, 0, pkl, 0, head.length);
                System.arraycopy(ops, 0, pkl, head.length, ops.length);
                pkl[pkl.length - 1] = '.';
                try (var z = new java.util.zip.ZipOutputStream(Files.newOutputStream(d.resolve("m.pth")))) {
                    z.putNextEntry(new java.util.zip.ZipEntry("archive/data.pkl"));
                    z.write(pkl);
                    z.closeEntry();
                }
                refused(headroom(d, "models", "inspect", "m.pth"), "m.pth", d, Set.of("photo.png", "m.pth"));
            }),
            test(k, "safetensors: 2,000 tensors over the same 1 MiB", () -> {
                Path d = folder("st-overlap");
                StringBuilder h = new StringBuilder("{");
                for (int i = 0; i < 2000; i++) h.append(i == 0 ? "" : ",").append("\"body.").append(i).append(".weight\":{\"dtype\":\"F32\",\"shape\":[64,64,8,8],\"data_offsets\":[0,1048576]}");
                HostileFiles.safetensors(d.resolve("m.safetensors"), h.append("}").toString(), new byte[1 << 20]);
                refused(headroom(d, "models", "inspect", "m.safetensors"), "m.safetensors", d, Set.of("photo.png", "m.safetensors"));
            }),
            test(k, "TF.js: one 1 MiB shard listed 3,000 times", () -> {
                Path d = folder("tfjs-shards");
                Files.write(d.resolve("w.bin"), new byte[1 << 20]);
                StringBuilder paths = new StringBuilder("["), weights = new StringBuilder("[");
                for (int i = 0; i < 3000; i++) {
                    paths.append(i == 0 ? "" : ",").append("\"w.bin\"");
                    weights.append(i == 0 ? "" : ",").append("{\"name\":\"c").append(i).append("/kernel\",\"shape\":[262144],\"dtype\":\"float32\"}");
                }
                Files.writeString(d.resolve("model.json"), HostileFiles.tfjs("[]", weights.append("]").toString(), paths.append("]").toString()));
                refused(headroom(d, "models", "inspect", "model.json"), "model.json", d, Set.of("photo.png", "model.json", "w.bin"));
            }),
            test(k, "plan --size 999999999x999999999", () -> {
                Path d = folder("plan-size");
                refused(headroom(d, "plan", "--synthetic", "srvgg-x4", "--size", "999999999x999999999", "--vram", "8GiB"), "--size", d, Set.of("photo.png"));
            }),
            test(k, "plan --size 99999999999x5 (past 32 bits)", () -> {
                Path d = folder("plan-size-long");
                refused(headroom(d, "plan", "--synthetic", "srvgg-x4", "--size", "99999999999x5", "--vram", "8GiB"), "--size", d, Set.of("photo.png"));
            }),
            test(k, "bench --tile 20000", () -> {
                Path d = folder("bench-tile");
                refused(headroom(d, "bench", "--synthetic", "srvgg-x4", "--tile", "20000", "--device", "cpu", "--runs", "1"), "--tile", d, Set.of("photo.png"));
            }),
            test(k, "upscale --overlap 1000000", () -> {
                Path d = folder("overlap");
                refused(headroom(d, "upscale", "photo.png", "-o", "out.png", "--model", model.toString(), "--overlap", "1000000"), "--overlap", d, Set.of("photo.png"));
            }),
        };
    }

    // ---- class 3: silently wrong output ------------------------------------------------------------------

    static DynamicTest[] silentlyWrong() {
        String k = "3 silently wrong";
        return new DynamicTest[] {
            test(k, "output path equal to the input", () -> {
                Path d = folder("same-out");
                byte[] before = Files.readAllBytes(d.resolve("photo.png"));
                refused(headroom(d, "upscale", "photo.png", "-o", "./photo.png", "--model", model.toString()), "input", d, Set.of("photo.png"));
                assertArrayEquals(before, Files.readAllBytes(d.resolve("photo.png")), "the input was changed");
            }),
            test(k, "output path equal to the model", () -> {
                Path d = folder("model-out");
                Files.copy(model, d.resolve("m.pth"));
                refused(headroom(d, "upscale", "photo.png", "-o", "m.pth", "--model", "m.pth"), "m.pth", d, Set.of("photo.png", "m.pth"));
                assertArrayEquals(Files.readAllBytes(model), Files.readAllBytes(d.resolve("m.pth")));
            }),
            test(k, "a/x.png and b/x.png into one folder", () -> {
                Path d = folder("collide");
                Files.createDirectories(d.resolve("a"));
                Files.createDirectories(d.resolve("b"));
                Files.createDirectories(d.resolve("out"));
                Files.copy(photo, d.resolve("a/x.png"));
                ImageIO.write(HostileFiles.picture(10, 30), "png", d.resolve("b/x.png").toFile());
                Result r = headroom(d, "upscale", "a/x.png", "b/x.png", "-o", "out", "--model", model.toString());
                if (r.status() == 0) {
                    try (Stream<Path> s = Files.list(d.resolve("out"))) {
                        assertEquals(2, s.count(), "two inputs, two outputs");
                    }
                } else {
                    refused(r, "x.png", d.resolve("out"), Set.of());
                }
            }),
            test(k, "--memory-trace equal to -o", () -> {
                Path d = folder("trace-out");
                refused(headroom(d, "upscale", "photo.png", "-o", "out.png", "--memory-trace", "out.png", "--model", model.toString()), "--memory-trace", d, Set.of("photo.png"));
            }),
            test(k, "-o -", () -> {
                Path d = folder("dash");
                Result r = headroom(d, "upscale", "photo.png", "-o", "-", "--model", model.toString());
                if (r.status() == 0) {
                    assertEquals(96, ImageIO.read(new java.io.ByteArrayInputStream(r.out())).getWidth(), "a PNG on stdout");
                    leftOnly(d, Set.of("photo.png"));
                } else {
                    refused(r, "-o -", d, Set.of("photo.png"));
                }
            }),
            test(k, "PNG with a bad CRC", () -> {
                Path d = folder("crc");
                byte[] png = HostileFiles.png(HostileFiles.picture(24, 16));
                int idat = HostileFiles.chunk(png, "IDAT");
                int len = ByteBuffer.wrap(png, idat, 4).getInt();
                png[idat + 8 + len] ^= 0x5a;   // the CRC's first byte
                Files.write(d.resolve("bad.png"), png);
                refused(headroom(d, "upscale", "bad.png", "-o", "out.png", "--model", model.toString()), "crc", d, Set.of("photo.png", "bad.png"));
                Result lenient = headroom(d, "upscale", "bad.png", "-o", "out.png", "--model", model.toString(), "--lenient", "-q");
                assertEquals(0, lenient.status(), lenient.err());
            }),
            test(k, "PNG cut inside its IDAT", () -> {
                Path d = folder("cut-png");
                byte[] png = HostileFiles.png(HostileFiles.picture(24, 16));
                Files.write(d.resolve("cut.png"), Arrays.copyOf(png, HostileFiles.chunk(png, "IDAT") + 20));
                refused(headroom(d, "upscale", "cut.png", "-o", "out.png", "--model", model.toString()), "cut.png", d, Set.of("photo.png", "cut.png"));
            }),
            test(k, "JPEG cut at 60%", () -> {
                Path d = folder("cut-jpeg");
                java.io.ByteArrayOutputStream j = new java.io.ByteArrayOutputStream();
                ImageIO.write(HostileFiles.picture(64, 64), "jpeg", j);
                byte[] b = j.toByteArray();
                Files.write(d.resolve("cut.jpg"), Arrays.copyOf(b, b.length * 6 / 10));
                refused(headroom(d, "upscale", "cut.jpg", "-o", "out.png", "--model", model.toString()), "cut.jpg", d, Set.of("photo.png", "cut.jpg"));
            }),
            test(k, "CMYK JPEG (pure cyan) comes out cyan, without alpha", () -> {
                Path d = folder("cmyk");
                Files.write(d.resolve("c.jpg"), HostileFiles.cmykJpeg(16, 16, 255, 0, 0, 0));
                Result r = headroom(d, "upscale", "c.jpg", "-o", "out.png", "--model", model.toString(), "-q");
                if (r.status() != 0) {
                    refused(r, "c.jpg", d, Set.of("photo.png", "c.jpg"));
                    return;
                }
                BufferedImage out = ImageIO.read(d.resolve("out.png").toFile());
                assertFalse(out.getColorModel().hasAlpha(), "K became alpha");
                int rgb = out.getRGB(32, 32);
                int red = rgb >> 16 & 0xff, green = rgb >> 8 & 0xff, blue = rgb & 0xff;
                assertTrue(red < 100 && green > 120 && blue > 170, String.format("cyan expected, got %d,%d,%d", red, green, blue));
            }),
            test(k, "EXIF orientation 6 (rotate 90) is applied", () -> {
                Path d = folder("exif");
                Files.write(d.resolve("r.jpg"), HostileFiles.jpegWithOrientation(HostileFiles.picture(24, 16), 6));
                Result r = headroom(d, "upscale", "r.jpg", "-o", "out.png", "--model", model.toString(), "-q");
                assertEquals(0, r.status(), r.err());
                BufferedImage out = ImageIO.read(d.resolve("out.png").toFile());
                assertEquals(64, out.getWidth(), "16 pixels high, shown 90 degrees turned, x4");
                assertEquals(96, out.getHeight());
                Result raw = headroom(d, "upscale", "r.jpg", "-o", "raw.png", "--model", model.toString(), "-q", "--ignore-orientation");
                assertEquals(0, raw.status(), raw.err());
                assertEquals(96, ImageIO.read(d.resolve("raw.png").toFile()).getWidth());
            }),
        };
    }

    // ---- class 4: files left behind ----------------------------------------------------------------------

    static DynamicTest[] leftBehind() {
        String k = "4 files left behind";
        return new DynamicTest[] {
            test(k, "a run that fails on its second image leaves no image and no trace", () -> {
                Path d = folder("fail-second");
                Files.createDirectories(d.resolve("out"));
                Files.writeString(d.resolve("bad.png"), "not a picture");
                Result r = headroom(d, "upscale", "photo.png", "bad.png", "-o", "out", "--model", model.toString(), "--memory-trace", "trace.jsonl");
                refused(r, "bad.png", d, Set.of("photo.png", "bad.png", "out"));
                leftOnly(d.resolve("out"), Set.of());
            }),
            test(k, "a run whose second image is damaged past its header leaves no image and no trace", () -> {
                Path d = folder("fail-second-data");
                Files.createDirectories(d.resolve("out"));
                byte[] png = HostileFiles.png(HostileFiles.picture(24, 16));
                Files.write(d.resolve("cut.png"), Arrays.copyOf(png, HostileFiles.chunk(png, "IDAT") + 20));
                Result r = headroom(d, "upscale", "photo.png", "cut.png", "-o", "out", "--model", model.toString(), "--memory-trace", "trace.jsonl");
                refused(r, "cut.png", d, Set.of("photo.png", "cut.png", "out"));
                leftOnly(d.resolve("out"), Set.of());
            }),
            test(k, "a trace that cannot be written leaves no image", () -> {
                Path d = folder("trace-fails");
                Files.createDirectories(d.resolve("trace.jsonl"));
                Result r = headroom(d, "upscale", "photo.png", "-o", "out.png", "--model", model.toString(), "--memory-trace", "trace.jsonl");
                assertTrue(r.status() != 0, "the trace could not be written");
                leftOnly(d, Set.of("photo.png", "trace.jsonl"));
            }),
            test(k, "a stale temporary file of a killed run is swept", () -> {
                Path d = folder("stale");
                String stale = ".out.png.headroom-" + (Integer.MAX_VALUE - 7) + "-1.tmp";
                Files.writeString(d.resolve(stale), "half an image");
                Result r = headroom(d, "upscale", "photo.png", "-o", "out.png", "--model", model.toString(), "-q");
                assertEquals(0, r.status(), r.err());
                leftOnly(d, Set.of("photo.png", "out.png"));
            }),
            test(k, "SIGTERM while starting and reading leaves nothing", () -> sigterm("term-read", 150)),
            test(k, "SIGTERM while computing leaves nothing", () -> sigterm("term-compute", 2500)),
            test(k, "SIGTERM while writing leaves nothing", () -> sigterm("term-write", -1)),
        };
    }

    /**
     * Starts a slow upscale (a 1024x1024 input through the x4 golden model: a 4096x4096 PNG to
     * write) and sends SIGTERM after {@code afterMs}, or (-1) as soon as rows reach its temporary
     * output file; then nothing but the input may remain.
     */
    static void sigterm(String name, long afterMs) throws Exception {
        Path d = Files.createDirectory(root.resolve(name));
        ImageIO.write(HostileFiles.picture(1024, 1024), "png", d.resolve("big.png").toFile());
        String cp = System.getProperty("hostile.classpath", System.getProperty("java.class.path"));
        Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx1g",
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-cp", cp, "dev.headroom.cli.Main",
                "upscale", "big.png", "-o", "out.png", "--model", model.toString(), "--tile", "256", "-q", "--memory-trace", "t.jsonl")
                .directory(d.toFile()).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        long t0 = System.nanoTime();
        if (afterMs >= 0) {
            Thread.sleep(afterMs);
        } else {
            while (p.isAlive() && (System.nanoTime() - t0) < 60e9) {
                try (Stream<Path> s = Files.list(d)) {
                    if (s.anyMatch(f -> f.getFileName().toString().endsWith(".tmp") && f.toFile().length() > 0)) break;
                }
                Thread.sleep(2);
            }
        }
        boolean alive = p.isAlive();
        p.destroy();   // SIGTERM
        assertTrue(p.waitFor(20, TimeUnit.SECONDS), "did not stop after SIGTERM");
        if (alive) assertTrue(p.exitValue() != 0, "stopped by SIGTERM");
        leftOnly(d, Set.of("big.png"));
    }

    // ---- class 5: exit codes and messages ----------------------------------------------------------------

    static DynamicTest[] messages() {
        String k = "5 exit codes and messages";
        return new DynamicTest[] {
            test(k, "input is a folder", () -> {
                Path d = folder("in-dir");
                Files.createDirectories(d.resolve("pics.png"));
                refused(headroom(d, "upscale", "pics.png", "-o", "out.png", "--model", model.toString()), "folder", d, Set.of("photo.png", "pics.png"));
            }),
            test(k, "input is /dev/zero", () -> {
                Path d = folder("in-dev");
                refused(headroom(d, "upscale", "/dev/zero", "-o", "out.png", "--model", model.toString()), "regular file", d, Set.of("photo.png"));
            }),
            test(k, "input is a FIFO", () -> {
                Path d = folder("in-fifo");
                mkfifo(d.resolve("pipe.png"));
                refused(headroom(d, "upscale", "pipe.png", "-o", "out.png", "--model", model.toString()), "regular file", d, Set.of("photo.png", "pipe.png"));
            }),
            test(k, "model is a FIFO", () -> {
                Path d = folder("model-fifo");
                mkfifo(d.resolve("m.pth"));
                refused(headroom(d, "models", "inspect", "m.pth"), "regular file", d, Set.of("photo.png", "m.pth"));
            }),
            test(k, "model is /dev/urandom", () -> {
                Path d = folder("model-dev");
                refused(headroom(d, "upscale", "photo.png", "-o", "out.png", "--model", "/dev/urandom"), "regular file", d, Set.of("photo.png"));
            }),
            test(k, "model is an empty file", () -> {
                Path d = folder("model-empty");
                Files.write(d.resolve("m.pth"), new byte[0]);
                refused(headroom(d, "models", "inspect", "m.pth"), "m.pth", d, Set.of("photo.png", "m.pth"));
            }),
            test(k, "model is a folder without model.json", () -> {
                Path d = folder("model-dir");
                Files.createDirectories(d.resolve("weights"));
                refused(headroom(d, "models", "inspect", "weights"), "folder", d, Set.of("photo.png", "weights"));
            }),
            test(k, "file name not in the locale's encoding", () -> {
                Path d = folder("encoding");
                Files.copy(photo, d.resolve("caf\u00e9.png"));
                Result r = headroom(d, Map.of("LANG", "C", "LC_ALL", "C"), "upscale", "caf\u00e9.png", "-o", "out.png", "--model", model.toString(), "-q");
                if (r.status() == 0) leftOnly(d, Set.of("photo.png", "caf\u00e9.png", "out.png"));
                else refused(r, ".png", d, Set.of("photo.png", "caf\u00e9.png"));
            }),
            test(k, "memory-report of a binary file", () -> {
                Path d = folder("report-binary");
                Files.write(d.resolve("t.jsonl"), new byte[] {(byte) 0xff, (byte) 0xfe, 0, 1, 2, (byte) 0x80, '\n'});
                refused(headroom(d, "memory-report", "t.jsonl", "-o", "r.html"), "t.jsonl", d, Set.of("photo.png", "t.jsonl"));
            }),
            test(k, "TF.js conv layer without kernel_size", () -> {
                Path d = folder("tfjs-no-kernel");
                Files.write(d.resolve("w.bin"), new byte[4 * (27 + 1)]);
                String layers = "[{\"class_name\":\"InputLayer\",\"config\":{\"name\":\"in\",\"batch_input_shape\":[null,null,null,3]}},"
                        + "{\"class_name\":\"Conv2D\",\"config\":{\"name\":\"c\",\"filters\":1},\"inbound_nodes\":[[[\"in\",0,0,{}]]]}]";
                String weights = "[{\"name\":\"c/kernel\",\"shape\":[3,3,3,1],\"dtype\":\"float32\"},{\"name\":\"c/bias\",\"shape\":[1],\"dtype\":\"float32\"}]";
                Files.writeString(d.resolve("model.json"), HostileFiles.tfjs(layers, weights, "[\"w.bin\"]"));
                refused(headroom(d, "models", "inspect", "model.json"), "model.json", d, Set.of("photo.png", "model.json", "w.bin"));
            }),
            test(k, "checkpoint missing a weight the graph needs", () -> {
                Path d = folder("missing-weight");
                // SRVGG-style names: body.0 is a 3->8 conv, body.2 an 8->48 conv, but body.2's bias is absent
                byte[] pkl = new Pickle().op('}').op('(')
                        .str("body.0.weight").tensor("0", 216, 0, new long[] {8, 3, 3, 3}, new long[] {27, 9, 3, 1})
                        .str("body.0.bias").tensor("1", 8, 0, new long[] {8}, new long[] {1})
                        .str("body.2.weight").tensor("2", 3456, 0, new long[] {48, 8, 3, 3}, new long[] {72, 9, 3, 1})
                        .op('u', '.').bytes();
                HostileFiles.checkpoint(d.resolve("m.pth"), pkl, false, "0", new byte[864], "1", new byte[32], "2", new byte[13824]);
                refused(headroom(d, "upscale", "photo.png", "-o", "out.png", "--model", "m.pth"), "m.pth", d, Set.of("photo.png", "m.pth"));
            }),
            test(k, "unknown --synthetic name", () -> {
                Path d = folder("synthetic");
                refused(headroom(d, "plan", "--synthetic", "nope", "--size", "64x64", "--vram", "8GiB"), "--synthetic", d, Set.of("photo.png"));
            }),
        };
    }

    static void mkfifo(Path p) throws Exception {
        assertEquals(0, new ProcessBuilder("mkfifo", p.toString()).inheritIO().start().waitFor());
    }

    // ---- class 6: the launcher ---------------------------------------------------------------------------

    static DynamicTest[] launcher() {
        String k = "6 launcher";
        return new DynamicTest[] {
            test(k, "a message holding a NUL reaches stderr as one line, without the incubator warning", () -> {
                Path d = folder("launcher");
                Path app = Files.createDirectories(d.resolve("app"));
                Files.copy(Path.of(System.getProperty("hostile.launcher", "headroom")), app.resolve("headroom"));
                Files.createDirectories(app.resolve("scripts"));
                Files.copy(Path.of("scripts/find-jdk"), app.resolve("scripts/find-jdk"));
                Files.createDirectories(app.resolve("target"));
                writeLauncherJar(app.resolve("target/headroom.jar"));
                Files.write(d.resolve("w.bin"), new byte[0]);
                String layers = "[{\"class_name\":\"InputLayer\",\"config\":{\"name\":\"in\",\"batch_input_shape\":[null,null,null,3]}},"
                        + "{\"class_name\":\"Evil\\u0000Layer\",\"config\":{\"name\":\"e\"},\"inbound_nodes\":[[[\"in\",0,0,{}]]]}]";
                Files.writeString(d.resolve("model.json"), HostileFiles.tfjs(layers, "[]", "[\"w.bin\"]"));
                Process p = new ProcessBuilder("bash", app.resolve("headroom").toString(), "models", "inspect", "model.json")
                        .directory(d.toFile()).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                        .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(d.resolve("err.txt").toFile()).start();
                boolean done = p.waitFor(20, TimeUnit.SECONDS);
                if (!done) p.destroyForcibly().waitFor();
                assertTrue(done, "launcher still running after 20 s");
                String err = Files.readString(d.resolve("err.txt"), StandardCharsets.ISO_8859_1);
                Files.delete(d.resolve("err.txt"));
                assertEquals(2, p.exitValue(), err);
                List<String> lines = err.lines().toList();
                assertEquals(1, lines.size(), "one line:\n" + err);
                assertTrue(lines.getFirst().startsWith("headroom: ") && lines.getFirst().contains("Evil"), err);
            }),
        };
    }

    /** A jar whose manifest runs headroom's Main from this test's class path, standing in for target/headroom.jar. */
    static void writeLauncherJar(Path jar) throws IOException {
        String cp = System.getProperty("hostile.classpath", System.getProperty("java.class.path"));
        StringBuilder urls = new StringBuilder();
        for (String e : cp.split(java.io.File.pathSeparator)) {
            if (e.endsWith("*")) {
                try (Stream<Path> s = Files.list(Path.of(e.substring(0, e.length() - 1)))) {
                    for (Path f : s.toList()) urls.append(f.toUri()).append(' ');
                }
            } else {
                urls.append(Path.of(e).toUri()).append(' ');
            }
        }
        java.util.jar.Manifest m = new java.util.jar.Manifest();
        m.getMainAttributes().put(java.util.jar.Attributes.Name.MANIFEST_VERSION, "1.0");
        m.getMainAttributes().put(java.util.jar.Attributes.Name.MAIN_CLASS, "dev.headroom.cli.Main");
        m.getMainAttributes().put(java.util.jar.Attributes.Name.CLASS_PATH, urls.toString().trim());
        try (var out = new java.util.jar.JarOutputStream(Files.newOutputStream(jar), m)) {
            out.flush();
        }
    }

    // ---- class 7: links ----------------------------------------------------------------------------------

    static DynamicTest[] links() {
        String k = "7 links";
        return new DynamicTest[] {
            test(k, "TF.js shard that links outside the model's folder", () -> {
                Path d = folder("shard-link");
                Path outside = Files.createDirectories(root.resolve("outside-secret"));
                Files.write(outside.resolve("secret.bin"), new byte[12]);
                Path m = Files.createDirectories(d.resolve("model"));
                Files.createSymbolicLink(m.resolve("w.bin"), outside.resolve("secret.bin"));
                Files.writeString(m.resolve("model.json"), HostileFiles.tfjs("[]", "[{\"name\":\"a/kernel\",\"shape\":[3],\"dtype\":\"float32\"}]", "[\"w.bin\"]"));
                refused(headroom(d, "models", "inspect", "model/model.json"), "outside", d, Set.of("photo.png", "model"));
            }),
            test(k, "TF.js shard that is a FIFO", () -> {
                Path d = folder("shard-fifo");
                mkfifo(d.resolve("w.bin"));
                Files.writeString(d.resolve("model.json"), HostileFiles.tfjs("[]", "[{\"name\":\"a/kernel\",\"shape\":[3],\"dtype\":\"float32\"}]", "[\"w.bin\"]"));
                refused(headroom(d, "models", "inspect", "model.json"), "regular file", d, Set.of("photo.png", "model.json", "w.bin"));
            }),
            test(k, "TF.js shard path with ..", () -> {
                Path d = folder("shard-dotdot");
                Files.createDirectories(d.resolve("m"));
                Files.write(d.resolve("w.bin"), new byte[12]);
                Files.writeString(d.resolve("m/model.json"), HostileFiles.tfjs("[]", "[{\"name\":\"a/kernel\",\"shape\":[3],\"dtype\":\"float32\"}]", "[\"../w.bin\"]"));
                refused(headroom(d, "models", "inspect", "m/model.json"), "leaves", d, Set.of("photo.png", "m", "w.bin"));
            }),
        };
    }
}
