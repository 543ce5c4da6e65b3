package dev.headroom.models;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.headroom.models.format.RestrictedUnpickler;
import dev.headroom.models.format.Safetensors;
import dev.headroom.testing.Golden;
import dev.headroom.testing.Randoms;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Hostile and damaged model files: always a ModelFormatException naming the file, never a crash or a hang. */
class FormatsTest {
    @TempDir
    Path dir;

    private Path safetensors(String header, int dataBytes) throws Exception {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h);
        Path f = dir.resolve("t.safetensors");
        Files.write(f, b.array());
        return f;
    }

    @Test
    void safetensorsOffsetsAreCheckedAgainstTheFile() throws Exception {
        Path f = safetensors("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8);
        var e = assertThrows(ModelFormatException.class, () -> Safetensors.read(f));
        assertTrue(e.getMessage().contains("'w'") && e.getMessage().contains("t.safetensors"), e.getMessage());
        Path g = safetensors("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 16);
        assertThrows(ModelFormatException.class, () -> Safetensors.read(g), "shape and size disagree");
        Path h = safetensors("{\"w\":{\"dtype\":\"I8\",\"shape\":[16],\"data_offsets\":[0,16]}}", 16);
        assertTrue(assertThrows(ModelFormatException.class, () -> Safetensors.read(h)).getMessage().contains("I8"));
    }

    @Test
    void safetensorsHeaderLengthBeyondTheFileIsRefused() throws Exception {
        Path f = dir.resolve("huge.safetensors");
        ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(1L << 40).put("{}      ".getBytes());
        Files.write(f, b.array());
        assertThrows(ModelFormatException.class, () -> ModelLoader.load(f));
    }

    @Test
    void randomBytesNeverCrashTheUnpickler() {
        Random r = new Random(Randoms.seed());
        for (int i = 0; i < 2000; i++) {
            byte[] b = new byte[1 + r.nextInt(64)];
            r.nextBytes(b);
            if (r.nextBoolean()) b[0] = (byte) 0x80;
            try {
                RestrictedUnpickler.load(b);
            } catch (RestrictedUnpickler.Refused expected) {
                // the only allowed failure
            }
        }
    }

    @Test
    void flippedBytesInACheckpointGiveAFormatError() throws Exception {
        byte[] good = Files.readAllBytes(Golden.dir().resolve("srvgg-x4.pth"));
        Random r = new Random(Randoms.seed());
        for (int i = 0; i < 20; i++) {
            byte[] bad = good.clone();
            for (int k = 0; k < 8; k++) bad[r.nextInt(bad.length)] ^= (byte) (1 + r.nextInt(255));
            Path f = dir.resolve("flip" + i + ".pth");
            Files.write(f, bad);
            try {
                ModelLoader.load(f);   // a flip inside weight data still loads: that is fine
            } catch (ModelFormatException expected) {
                assertTrue(expected.getMessage().startsWith("flip" + i + ".pth"), expected.getMessage());
            }
        }
    }

    @Test
    void tfjsShardsMayNotLeaveTheModelFolder() throws Exception {
        Path m = dir.resolve("model.json");
        Files.writeString(m, "{\"modelTopology\":{\"class_name\":\"Functional\",\"config\":{\"layers\":[]}},"
                + "\"weightsManifest\":[{\"paths\":[\"../../etc/passwd\"],\"weights\":[]}]}");
        var e = assertThrows(ModelFormatException.class, () -> ModelLoader.load(m));
        assertTrue(e.getMessage().contains("leaves the model's folder"), e.getMessage());
    }

    @Test
    void unknownArchitectureNamesWhatDidNotMatch() throws Exception {
        Path f = safetensors("{\"encoder.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
        var e = assertThrows(ModelFormatException.class, () -> ModelLoader.load(f));
        assertTrue(e.getMessage().contains("encoder.weight") && e.getMessage().contains("RRDBNet"), e.getMessage());
    }

    @Test
    void notAModelAtAll() throws Exception {
        Path f = dir.resolve("readme.bin");
        Files.writeString(f, "hello");
        var e = assertThrows(ModelFormatException.class, () -> ModelLoader.load(f));
        assertEquals("readme.bin: not a model file headroom reads (safetensors, PyTorch zip .pth/.pt, Keras .h5, TF.js model.json)", e.getMessage());
    }
}
