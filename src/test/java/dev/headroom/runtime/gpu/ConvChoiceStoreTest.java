package dev.headroom.runtime.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
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
}
