package dev.headroom.server;

import dev.headroom.core.Sizes;
import io.javalin.config.RoutesConfig;
import io.javalin.http.Context;
import io.javalin.http.HttpResponseException;
import io.javalin.http.HttpStatus;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.LinkedHashMap;
import java.util.Map;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.handler.ErrorHandler;
import org.eclipse.jetty.util.Callback;

/**
 * Every error the server answers, as RFC 9457 problem details ({@code application/problem+json})
 * with a one-line detail that says what to change and never a stack trace: the API's own
 * ({@link ApiError}, answered by {@link HttpApi}), Javalin's (a body over the size limit), an
 * unexpected failure (logged; the client gets its class only), an unknown route, and what Jetty
 * refuses before any route sees it (a URL with bad percent-encoding, headers too large), which
 * Jetty would otherwise answer with an HTML page.
 */
final class Problems {
    static final String TYPE = "application/problem+json";

    private Problems() {}

    /** The handlers of everything but {@link ApiError}; {@code maxBody}: the limit on a body that is not an upload. */
    static void install(RoutesConfig r, long maxBody, long maxUpload) {
        r.exception(JobStore.Unavailable.class, (e, ctx) -> write(ctx, 503, "Service Unavailable",
                "the job store (the fleet's database) cannot be reached now; try again shortly"));
        r.exception(HttpResponseException.class, (e, ctx) -> write(ctx, e.getStatus(), title(e.getStatus()), switch (e.getStatus()) {
            case 404, 405 -> noRoute(ctx, e.getStatus());   // Javalin's answer to a path or method no route has
            case 413 -> "the body is over " + Sizes.format(maxBody) + ", this server's limit for a request that is not an upload (uploads: "
                    + Sizes.format(maxUpload) + ", --max-upload); send a smaller body";
            default -> e.getMessage() + " (" + ctx.method() + " " + ctx.path() + ")";
        }));
        r.exception(Exception.class, (e, ctx) -> {
            log(ctx.method() + " " + ctx.path(), e);
            write(ctx, 500, "Internal Server Error", "the server failed on this request (" + e.getClass().getSimpleName()
                    + "); the server log has the details");
        });
        r.error(404, ctx -> {
            if (!written(ctx)) write(ctx, 404, "Not Found", noRoute(ctx, 404));
        });
        r.error(405, ctx -> {
            if (!written(ctx)) write(ctx, 405, "Method Not Allowed", noRoute(ctx, 405));
        });
    }

    private static String noRoute(Context ctx, int status) {
        return status == 405 ? ctx.method() + " is not allowed on " + ctx.path() + "; README.md lists each route's methods"
                : "no route " + ctx.method() + " " + ctx.path() + "; the API is under /v1";
    }

    /**
     * An {@link Error} thrown by a route (Javalin's javaLangErrorHandler; its own sets 500 with no body and logs
     * through SLF4J, bound to nothing here: slf4j-nop): logged here, answered as a problem if nothing was sent yet.
     */
    static void fatal(jakarta.servlet.http.HttpServletResponse res, Error e) {
        log("a route", e);
        if (res.isCommitted()) return;
        res.setStatus(500);
        res.setContentType(TYPE);
        try {
            res.getOutputStream().write(body(500, "Internal Server Error", "the server failed on this request (" + e.getClass().getSimpleName()
                    + "); the server log has the details", null));
        } catch (IOException gone) {
            // the client has gone
        }
    }

    /**
     * The server log's record of an unexpected failure: where, and the whole stack trace (the client's detail
     * sends people here, and names only the class). One write, so concurrent failures do not interleave.
     */
    static void log(String where, Throwable e) {
        java.io.StringWriter w = new java.io.StringWriter();
        w.append("headroom serve: ").append(where).append(" failed: ");
        e.printStackTrace(new java.io.PrintWriter(w, true));
        System.err.print(w);
        System.err.flush();
    }

    /** Whether the response is a problem already (an error handler then leaves it). */
    static boolean written(Context ctx) {
        String t = ctx.res().getContentType();
        return t != null && t.startsWith(TYPE);
    }

    static void write(Context ctx, int status, String title, String detail) {
        ctx.status(status);
        ctx.contentType(TYPE);
        ctx.result(body(status, title, detail, ctx.path()));
    }

    private static String title(int status) {
        HttpStatus s = HttpStatus.forStatus(status);
        return s == HttpStatus.UNKNOWN ? "Error " + status : s.getMessage();
    }

    static byte[] body(int status, String title, String detail, String instance) {
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("type", "about:blank");
        p.put("title", title);
        p.put("status", status);
        p.put("detail", detail);
        if (instance != null) p.put("instance", instance);
        try {
            return HttpApi.JSON.writeValueAsBytes(p);
        } catch (IOException e) {
            return ("{\"status\":" + status + "}").getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        }
    }

    /**
     * What Jetty answers itself, before any route (Javalin's handlers never see these requests): a
     * problem instead of its HTML page, whatever the method and the Accept header.
     */
    static final class JettyErrors extends ErrorHandler {
        private final int headerBytes;

        /** {@code headerBytes}: the limit on a request's line and headers, named when they are over it. */
        JettyErrors(int headerBytes) {
            this.headerBytes = headerBytes;
        }

        @Override
        public boolean errorPageForMethod(String method) {
            return true;
        }

        @Override
        protected void generateResponse(Request request, Response response, int code, String message, Throwable cause, Callback callback) {
            response.getHeaders().put(HttpHeader.CONTENT_TYPE, TYPE);
            response.write(true, ByteBuffer.wrap(body(code, title(code), detail(code, message), null)), callback);
        }

        private String detail(int status, String reason) {
            String why = reason == null || reason.isBlank() ? title(status) : reason.lines().findFirst().orElse("").strip();
            if (why.length() > 200) why = why.substring(0, 200) + "...";
            return switch (status) {
                case 400 -> "the request was refused before any route saw it (" + why + "); check the URL's percent-encoding (%XX, two hex digits)"
                        + " and the request line and headers";
                case 413, 414, 431 -> "the request's URL and headers are over " + Sizes.format(headerBytes) + ", this server's limit (" + why
                        + "); send a shorter URL and fewer or smaller headers";
                default -> "the request was refused before any route saw it (" + status + ", " + why + ")";
            };
        }
    }
}
