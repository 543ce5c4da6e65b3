package dev.headroom.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import jakarta.servlet.ServletOutputStream;
import jakarta.servlet.WriteListener;
import jakarta.servlet.http.HttpServletResponse;
import java.io.ByteArrayOutputStream;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** What a route's {@link Error} is answered with (no route can be made to throw one through the API, so on a recorded response). */
class ProblemsTest {
    /** A servlet response that records what is set and written; {@code committed}: whether something was sent already. */
    private static HttpServletResponse recording(Map<String, Object> set, ByteArrayOutputStream body, boolean committed) {
        ServletOutputStream out = new ServletOutputStream() {
            @Override
            public boolean isReady() {
                return true;
            }

            @Override
            public void setWriteListener(WriteListener listener) {}

            @Override
            public void write(int b) {
                body.write(b);
            }
        };
        return (HttpServletResponse) java.lang.reflect.Proxy.newProxyInstance(ProblemsTest.class.getClassLoader(), new Class<?>[] {HttpServletResponse.class},
                (p, m, a) -> switch (m.getName()) {
                    case "isCommitted" -> committed;
                    case "getOutputStream" -> out;
                    case "setStatus", "setContentType" -> {
                        set.put(m.getName(), a[0]);
                        yield null;
                    }
                    default -> throw new UnsupportedOperationException(m.getName());
                });
    }

    @Test
    void anErrorInARouteIsAProblemNamingItsClassAndNoStackTraceWhileTheLogHasIt() throws Exception {
        Map<String, Object> set = new HashMap<>();
        ByteArrayOutputStream body = new ByteArrayOutputStream(), log = new ByteArrayOutputStream();
        java.io.PrintStream err = System.err;
        System.setErr(new java.io.PrintStream(log, true));
        try {
            Problems.fatal(recording(set, body, false), new OutOfMemoryError("Java heap space"));
        } finally {
            System.setErr(err);
        }
        assertTrue(log.toString().startsWith("headroom serve: a route failed: java.lang.OutOfMemoryError: Java heap space"), log.toString());
        assertTrue(log.toString().contains("\tat dev.headroom.server.ProblemsTest."), "the server log has the stack trace the detail promises: " + log);
        assertEquals(500, set.get("setStatus"));
        assertEquals("application/problem+json", set.get("setContentType"));
        JsonNode p = HttpApi.JSON.readTree(body.toByteArray());
        assertEquals(500, p.path("status").asInt());
        assertEquals("the server failed on this request (OutOfMemoryError); the server log has the details", p.path("detail").asText());
        assertFalse(body.toString().contains("\tat "), body.toString());
    }

    @Test
    void aResponseAlreadySentIsLeftAlone() {
        Map<String, Object> set = new HashMap<>();
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        Problems.fatal(recording(set, body, true), new StackOverflowError());
        assertEquals(Map.of(), set);
        assertEquals(0, body.size());
    }
}
