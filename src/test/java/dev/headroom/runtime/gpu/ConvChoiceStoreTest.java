package dev.headroom.runtime.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The on-disk memory of convolution choices: what one process writes, the next reads; nothing else is trusted. */
class ConvChoiceStoreTest {
    @TempDir
    Path dir;

    private static final String H100 = "NVIDIA H100 sm_90 driver 13000 cudnn 91400 F16";

    @Test
    void aChoiceWrittenByOneProcessIsReadByTheNext() {
        ConvChoiceStore a = ConvChoiceStore.open(dir, H100);
        a.put("Key[kh=3, cin=64]", new ConvChoiceStore.Entry("FUSED", 1, 3, 812.5));
        a.put("algo 3x3:64>32", new ConvChoiceStore.Entry("ALGO", 1, 0, 90.0));
        ConvChoiceStore b = ConvChoiceStore.open(dir, H100);
        assertEquals(new ConvChoiceStore.Entry("FUSED", 1, 3, 812.5), b.get("Key[kh=3, cin=64]"));
        assertEquals(new ConvChoiceStore.Entry("ALGO", 1, 0, 90.0), b.get("algo 3x3:64>32"));
        assertEquals(2, b.size());
    }

    @Test
    void theLaterLineForAKeyWins() {
        ConvChoiceStore a = ConvChoiceStore.open(dir, H100);
        a.put("k", new ConvChoiceStore.Entry("GRAPH", 0, 1, 5));
        a.put("k", new ConvChoiceStore.Entry("FUSED", 0, 2, 4));
        assertEquals("FUSED", ConvChoiceStore.open(dir, H100).get("k").way());
    }

    @Test
    void anotherDeviceLibraryOrPrecisionDoesNotSeeTheChoices() {
        ConvChoiceStore.open(dir, H100).put("k", new ConvChoiceStore.Entry("FUSED", 0, 0, 1));
        assertNull(ConvChoiceStore.open(dir, H100.replace("91400", "91900")).get("k"), "another cuDNN");
        assertNull(ConvChoiceStore.open(dir, H100.replace("F16", "BF16")).get("k"), "another precision");
        assertNotEquals(ConvChoiceStore.open(dir, H100).file(), ConvChoiceStore.open(dir, "NVIDIA GeForce RTX 4090 sm_89 driver 13000 cudnn 91400 F16").file());
    }

    @Test
    void tornOrForeignLinesAreSkippedAndTheRestIsRead() throws Exception {
        ConvChoiceStore a = ConvChoiceStore.open(dir, H100);
        a.put("good", new ConvChoiceStore.Entry("LEGACY", 0, 0, 7));
        Files.writeString(a.file(), "half a li\nk2\tFUSED\tx\t1\t2\nheadroom-conv-choices 1 someone else\n", StandardOpenOption.APPEND);
        a.put("after", new ConvChoiceStore.Entry("GRAPH", 1, 0, 3));
        ConvChoiceStore b = ConvChoiceStore.open(dir, H100);
        assertEquals(2, b.size(), "the two good lines");
        assertEquals("GRAPH", b.get("after").way());
    }

    @Test
    void aFileFromAnotherFormatIsIgnored() throws Exception {
        ConvChoiceStore a = ConvChoiceStore.open(dir, H100);
        a.put("k", new ConvChoiceStore.Entry("FUSED", 0, 0, 1));
        String text = Files.readString(a.file());
        Files.writeString(a.file(), text.replace("headroom-conv-choices " + ConvChoiceStore.FORMAT, "headroom-conv-choices 0"));
        assertNull(ConvChoiceStore.open(dir, H100).get("k"));
    }

    @Test
    void anUnwritableFolderStillRemembersWithinTheProcess() throws Exception {
        Path file = dir.resolve("not-a-folder");
        Files.writeString(file, "x");
        ConvChoiceStore a = ConvChoiceStore.open(file, H100);
        a.put("k", new ConvChoiceStore.Entry("FUSED", 0, 0, 1));
        assertEquals("FUSED", a.get("k").way());
        assertThrows(IllegalArgumentException.class, () -> a.put("a\tb", new ConvChoiceStore.Entry("FUSED", 0, 0, 1)));
    }

    @Test
    void aKeyIsTimedByOneSessionAtATimeAndNeverAgainOnceTimed() {
        ConvChoiceStore s = ConvChoiceStore.open(dir, H100);
        assertEquals(ConvChoiceStore.Turn.WAIT, s.turn("k", false), "a session whose budget does not allow timing claims nothing");
        assertEquals(ConvChoiceStore.Turn.TIME, s.turn("k", true));
        assertEquals(ConvChoiceStore.Turn.WAIT, s.turn("k", true), "another session waits while the first times it");
        assertEquals(ConvChoiceStore.Turn.TIME, s.turn("other", true), "other keys are timed meanwhile");
        s.timed("k");   // its timing failed: nothing remembered
        assertEquals(ConvChoiceStore.Turn.TIME, s.turn("k", true), "free to time again after a failed timing");
        s.put("k", new ConvChoiceStore.Entry("FUSED", 1, 2, 40.0));
        s.timed("k");
        assertEquals(ConvChoiceStore.Turn.ADOPT, s.turn("k", true), "timed once: every session takes it");
        assertEquals(ConvChoiceStore.Turn.ADOPT, s.turn("k", false));
        s.put("first", new ConvChoiceStore.Entry("FUSED", 0, 0, Double.NaN));
        assertEquals(ConvChoiceStore.Turn.TIME, s.turn("first", true), "an untimed first choice remembered is still timed");
    }

    @Test
    void devicesOfOneKindShareOneStoreUntilTheLastLetsGo() {
        ConvChoiceStore a = ConvChoiceStore.acquire(dir, H100), b = ConvChoiceStore.acquire(dir, H100);
        assertSame(a, b, "two open devices of one kind: one store, so a shape timed on one is not timed on the other");
        assertEquals(ConvChoiceStore.Turn.TIME, a.turn("k", true));
        assertEquals(ConvChoiceStore.Turn.WAIT, b.turn("k", true));
        ConvChoiceStore bf16 = ConvChoiceStore.acquire(dir, H100.replace("F16", "BF16"));
        assertNotSame(a, bf16, "another precision, another store");
        ConvChoiceStore.release(bf16);
        ConvChoiceStore.release(a);
        assertSame(b, ConvChoiceStore.acquire(dir, H100), "still held by the other device");
        ConvChoiceStore.release(b);
        ConvChoiceStore.release(b);
        ConvChoiceStore c = ConvChoiceStore.acquire(dir, H100);
        assertNotSame(a, c, "released by all: the next device reads the file again, as a new process would");
        assertEquals(ConvChoiceStore.Turn.TIME, c.turn("k", true), "a claim does not outlive the store");
        ConvChoiceStore.release(c);
    }
}
