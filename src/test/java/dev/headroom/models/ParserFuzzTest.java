package dev.headroom.models;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.headroom.models.format.RestrictedUnpickler;
import dev.headroom.models.format.Safetensors;
import dev.headroom.models.format.TorchCheckpoint;
import dev.headroom.models.image.ImageFiles;
import dev.headroom.testing.Golden;
import dev.headroom.testing.HostileFiles;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.zip.ZipFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Property-style fuzzing: seeded random mutations of valid files (byte flips, boundary values,
 * cuts, repeated and dropped slices) must each end in a value or the parser's own typed error,
 * never another exception or an Error. Bounded in count and time; a failure names the seed and
 * round so it can be replayed.
 */
class ParserFuzzTest {
    static final int ROUNDS = 300;
    static final long MAX_NANOS = 8_000_000_000L;

    @TempDir
    Path dir;

    interface Parser {
        void parse(byte[] bytes) throws Exception;
    }

    /** Runs mutated copies of {@code valid} through {@code parser}; only {@code allowed} may be thrown. */
    static int fuzz(String what, long seed, byte[] valid, int hot, Parser parser, Class<?>... allowed) {
        Random rnd = new Random(seed);
        long t0 = System.nanoTime();
        int accepted = 0, round = 0;
        for (; round < ROUNDS && System.nanoTime() - t0 < MAX_NANOS; round++) {
            byte[] b = mutate(rnd, valid, hot);
            try {
                parser.parse(b);
                accepted++;
            } catch (Throwable t) {
                if (Arrays.stream(allowed).noneMatch(c -> c.isInstance(t))) {
                    fail(what + ", seed " + seed + " round " + round + ": " + t, t);
                }
            }
        }
        assertTrue(round >= 20, what + ": only " + round + " rounds in the time");
        return accepted;
    }

    /** One to four mutations, most of them in the first {@code hot} bytes (the header, where structure lives). */
    static byte[] mutate(Random rnd, byte[] in, int hot) {
        byte[] b = in.clone();
        int n = 1 + rnd.nextInt(4);
        for (int i = 0; i < n && b.length > 0; i++) {
            int span = rnd.nextInt(4) == 0 ? b.length : Math.min(hot, b.length);
            int at = rnd.nextInt(span);
            switch (rnd.nextInt(6)) {
                case 0 -> b[at] ^= (byte) (1 << rnd.nextInt(8));
                case 1 -> b[at] = (byte) new int[] {0, 0xff, 0x7f, 0x80, 0x01, 0xfe}[rnd.nextInt(6)];
                case 2 -> b = Arrays.copyOf(b, at);                                     // cut
                case 3 -> {                                                             // repeat a slice
                    int len = Math.min(1 + rnd.nextInt(64), b.length - at);
                    byte[] c = new byte[b.length + len];
                    System.arraycopy(b, 0, c, 0, at + len);
                    System.arraycopy(b, at, c, at + len, b.length - at);
                    b = c;
                }
                case 4 -> {                                                             // drop a slice
                    int len = Math.min(1 + rnd.nextInt(64), b.length - at);
                    byte[] c = new byte[b.length - len];
                    System.arraycopy(b, 0, c, 0, at);
                    System.arraycopy(b, at + len, c, at, b.length - at - len);
                    b = c;
                }
                default -> {                                                            // a 4-byte length field gone large
                    if (at + 4 <= b.length) {
                        int v = new int[] {-1, Integer.MAX_VALUE, 1 << 30, 0x10000}[rnd.nextInt(4)];
                        b[at] = (byte) v;
                        b[at + 1] = (byte) (v >> 8);
                        b[at + 2] = (byte) (v >> 16);
                        b[at + 3] = (byte) (v >> 24);
                    }
                }
            }
        }
        return b;
    }

    @Test
    void pickles() throws Exception {
        byte[] pkl;
        try (ZipFile z = new ZipFile(Golden.dir().resolve("srvgg-x4.pth").toFile())) {
            var e = z.stream().filter(x -> x.getName().endsWith("data.pkl")).findFirst().orElseThrow();
            pkl = z.getInputStream(e).readAllBytes();
        }
        RestrictedUnpickler.load(pkl);
        fuzz("pickle", 2101, pkl, pkl.length, RestrictedUnpickler::load, RestrictedUnpickler.Refused.class);
    }

    @Test
    void checkpoints() throws Exception {
        byte[] pth = Files.readAllBytes(Golden.dir().resolve("srvgg-x4.pth"));
        Path f = dir.resolve("m.pth");
        fuzz("checkpoint", 2102, pth, pth.length, b -> {
            Files.write(f, b);
            ModelLoader.load(f);
        }, ModelFormatException.class);
    }

    @Test
    void safetensors() throws Exception {
        byte[] st = Files.readAllBytes(Golden.dir().resolve("srvgg-x4.fp16.safetensors"));
        long header = java.nio.ByteBuffer.wrap(st, 0, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
        Path f = dir.resolve("m.safetensors");
        int accepted = fuzz("safetensors", 2103, st, (int) (8 + header), b -> {
            Files.write(f, b);
            Safetensors.read(f);
        }, ModelFormatException.class);
        assertTrue(accepted < ROUNDS, "some mutations must be refused");
    }

    @Test
    void pngs() throws Exception {
        byte[] png = HostileFiles.png(HostileFiles.picture(40, 30));
        Path f = dir.resolve("i.png");
        for (boolean lenient : new boolean[] {false, true}) {
            fuzz("png" + (lenient ? " (lenient)" : ""), lenient ? 2105 : 2104, png, png.length, b -> {
                Files.write(f, b);
                ImageFiles.read(f, 1 << 20, new ImageFiles.ReadOptions(lenient, false));
            }, ImageFiles.BadImage.class);
        }
    }
}
