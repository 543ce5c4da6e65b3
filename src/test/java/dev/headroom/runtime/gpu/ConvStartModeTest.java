package dev.headroom.runtime.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** HEADROOM_CONV_START's values (no GPU needed): the default, the three modes, and a typo refused in one line. */
class ConvStartModeTest {
    private final String before = System.getProperty("headroom.conv-start");

    @AfterEach
    void restore() {
        if (before == null) System.clearProperty("headroom.conv-start");
        else System.setProperty("headroom.conv-start", before);
    }

    @Test
    void unsetOrDefaultIsBackgroundAndTheModesAreTakenAsGiven() {
        System.clearProperty("headroom.conv-start");
        if (System.getenv("HEADROOM_CONV_START") == null) assertEquals("background", ConvStart.startMode());
        System.setProperty("headroom.conv-start", "default");
        assertEquals("background", ConvStart.startMode());
        for (String mode : new String[] {"first", "background", "precompiled"}) {
            System.setProperty("headroom.conv-start", mode);
            assertEquals(mode, ConvStart.startMode());
        }
    }

    @Test
    void aTypoIsRefusedNamingTheModes() {
        System.setProperty("headroom.conv-start", "backgroud");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, ConvStart::startMode);
        assertTrue(e.getMessage().contains("backgroud") && e.getMessage().contains("background (the default), first or precompiled"), e.getMessage());
        assertEquals(1, e.getMessage().lines().count());
    }
}
