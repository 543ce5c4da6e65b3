package dev.headroom.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.http.HttpRequest;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "jobs", mixinStandardHelpOptions = true, description = "Lists, shows or cancels jobs of a headroom server: jobs [list], jobs show ID, jobs cancel ID.")
final class JobsCommand implements Callable<Integer> {
    @Parameters(index = "0", arity = "0..1", paramLabel = "list|show|cancel", defaultValue = "list", description = "What to do (default: list)")
    String action;

    @Parameters(index = "1", arity = "0..1", paramLabel = "ID", description = "The job, for show and cancel")
    String id;

    @Mixin
    ServerClient client;

    @Option(names = "--state", paramLabel = "STATE", description = "list: only jobs in this state (queued, running, succeeded, failed, cancelled)")
    String state;

    @Option(names = "--limit", defaultValue = "100", description = "list: at most this many (default: ${DEFAULT-VALUE})")
    int limit;

    @Option(names = "--json", description = "The server's JSON as it is")
    boolean json;

    @Override
    public Integer call() throws Exception {
        JsonNode r = switch (action) {
            case "list" -> client.get("/v1/jobs?limit=" + limit + (state == null ? "" : "&state=" + java.net.URLEncoder.encode(state, "UTF-8")));
            case "show" -> client.get("/v1/jobs/" + need());
            case "cancel" -> client.call("DELETE", "/v1/jobs/" + need(), HttpRequest.BodyPublishers.noBody(), null);
            default -> throw new Main.UsageError("jobs " + action + ": use list, show ID or cancel ID");
        };
        if (json) {
            System.out.println(ServerClient.JSON.writerWithDefaultPrettyPrinter().writeValueAsString(r));
        } else if (action.equals("list")) {
            for (JsonNode j : r.path("jobs")) System.out.println(line(j));
        } else {
            System.out.println(line(r));
        }
        return 0;
    }

    private String need() {
        if (id == null || id.isBlank()) throw new Main.UsageError("jobs " + action + " needs a job ID");
        if (!id.matches("[A-Za-z0-9-]{1,64}")) throw new Main.UsageError("'" + id + "' is not a job ID");
        return id;
    }

    static String line(JsonNode j) {
        JsonNode p = j.path("progress");
        return String.format("%s %-9s prio %d %s %dx%d %d/%d tiles%s%s", j.path("id").asText(), j.path("state").asText(), j.path("priority").asInt(),
                j.path("model").asText(), j.path("width").asInt(), j.path("height").asInt(), p.path("done").asInt(), p.path("total").asInt(),
                j.path("cached").asBoolean() ? " cached" : "", j.path("error").isTextual() ? " error: " + j.path("error").asText() : "");
    }
}
