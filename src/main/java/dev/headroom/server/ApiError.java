package dev.headroom.server;

/**
 * An error the API answers as RFC 9457 problem details: an HTTP status, a short title and a
 * one-line detail that says what to change.
 */
public final class ApiError extends RuntimeException {
    public final int status;
    public final String title;

    public ApiError(int status, String title, String detail) {
        super(detail, null, false, false);
        this.status = status;
        this.title = title;
    }

    public static ApiError notFound(String id) {
        return new ApiError(404, "Not Found", "no job with id '" + id + "'; list jobs with GET /v1/jobs");
    }

    public static ApiError bad(String detail) {
        return new ApiError(400, "Bad Request", detail);
    }

    public static ApiError unprocessable(String detail) {
        return new ApiError(422, "Unprocessable Content", detail);
    }

    /** What a detail quotes of a failure: the first line of its message, or its class where it has none. */
    static String why(Throwable e) {
        return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage().lines().findFirst().orElse("");
    }
}
