package dev.headroom.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

/** `bench --host-cache`: the weights' load from the file and reload from the host copy, side by side; a cache too small or malformed is bad input. */
class HostCacheOptionTest {
    @Test
    void benchTimesLoadsAgainstReloadsFromTheHostCopy() throws Exception {
        var r = CliTest.headroom("bench", "--synthetic", "srvgg-x4", "--tile", "8", "--runs", "2", "--device", "cpu", "--host-cache", "64MiB", "--json");
        assertEquals(0, r.status(), r.err());
        JsonNode w = new ObjectMapper().readTree(r.out()).path("weights_reload");
        assertTrue(w.path("weight_bytes").asLong() > 0, r.out());
        assertTrue(w.path("load_from_file_ms").asDouble() > 0 && w.path("reload_from_host_copy_ms").asDouble() > 0, r.out());

        var small = CliTest.headroom("bench", "--synthetic", "srvgg-x4", "--tile", "8", "--runs", "1", "--device", "cpu", "--host-cache", "1KiB");
        assertEquals(2, small.status(), small.err());
        assertTrue(small.err().contains("--host-cache") && small.err().lines().count() == 1, small.err());
        var bad = CliTest.headroom("bench", "--synthetic", "srvgg-x4", "--tile", "8", "--runs", "1", "--device", "cpu", "--host-cache", "lots");
        assertEquals(2, bad.status(), bad.err());
        assertTrue(bad.err().contains("--host-cache"), bad.err());
    }
}
