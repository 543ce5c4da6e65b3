package dev.headroom.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "submit", mixinStandardHelpOptions = true,
        description = "Sends images to a headroom server as upscale jobs (or latents as decode jobs); with --wait, follows them and saves the results.")
final class SubmitCommand implements Callable<Integer> {
    @Parameters(paramLabel = "IMAGE", arity = "1..*", description = "PNG or JPEG images (with --task decode: latents, safetensors, .npy or .pt)")
    List<Path> images;

    @Option(names = "--task", paramLabel = "upscale|decode", defaultValue = "upscale", description = "What the server does with each file (default: ${DEFAULT-VALUE}; decode needs --model naming a VAE)")
    String task;

    @Option(names = "--weights", paramLabel = "fp16|bf16|int8|fp8|nf4", description = "Hold the model's convolution kernels in this form, as upscale --weights (default: as the file stores them)")
    String weights;

    @Mixin
    ServerClient client;

    @Option(names = "--model", defaultValue = "default", description = "A model name the server knows (default: ${DEFAULT-VALUE})")
    String model;

    @Option(names = "--priority", defaultValue = "0", description = "Higher runs first (default: ${DEFAULT-VALUE})")
    int priority;

    @Option(names = "--tile", paramLabel = "N", description = "Tile size in input pixels (default: the server's planner chooses)")
    Integer tile;

    @Option(names = "--format", paramLabel = "png|jpeg|webp", defaultValue = "png", description = "The result's format (default: ${DEFAULT-VALUE})")
    String format;

    @Option(names = "--wait", description = "Follow the jobs (progress from the event stream) until they end, and save the results")
    boolean await;

    @Option(names = {"-o", "--output"}, paramLabel = "OUT", description = "With --wait: the result's file (one image) or a folder (IMAGE's name with -out and the format's extension)")
    Path output;

    @Option(names = {"-q", "--quiet"}, description = "No progress bar")
    boolean quiet;

    @Override
    public Integer call() throws Exception {
        for (Path p : images) if (!Files.isRegularFile(p)) throw new Main.UsageError(p + ": no such file");
        if (output != null && !await) throw new Main.UsageError("-o needs --wait (the result exists once the job has succeeded)");
        boolean folder = output != null && (Files.isDirectory(output) || images.size() > 1);
        if (folder && !Files.isDirectory(output)) throw new Main.UsageError(images.size() + " images need -o to be an existing folder; " + output + " is not one");
        ObjectNode params = ServerClient.JSON.createObjectNode().put("task", task).put("model", model).put("priority", priority).put("format", format);
        if (tile != null) params.put("tile", tile);
        if (weights != null) params.put("weights", weights);   // the server checks it (422 with the reason)
        List<String> ids = new ArrayList<>();
        for (Path p : images) {
            JsonNode j = client.submit(p, params.toString());
            ids.add(j.path("id").asText());
            System.out.println(j.path("id").asText() + " " + j.path("state").asText() + (j.path("cached").asBoolean() ? " (cached)" : "") + " " + p);
        }
        if (!await) return 0;
        int failed = 0;
        for (int i = 0; i < ids.size(); i++) {
            String id = ids.get(i);
            JsonNode submitted = client.get("/v1/jobs/" + id);
            long outPixels = submitted.path("out_width").asLong() * submitted.path("out_height").asLong();
            ProgressBar bar = !quiet && ProgressBar.terminal() ? new ProgressBar(System.err, images.get(i).getFileName().toString(), outPixels) : null;
            String end = client.follow(id, (done, total) -> {
                if (bar != null) bar.tileDone(done, total);
            });
            JsonNode job = client.get("/v1/jobs/" + id);
            if (!end.equals("succeeded")) {
                failed++;
                System.err.println("headroom: job " + id + " (" + images.get(i) + ") " + job.path("state").asText()
                        + (job.path("error").isTextual() ? ": " + job.path("error").asText() : ""));
                continue;
            }
            if (output != null) {
                Path out = folder ? output.resolve(stem(images.get(i)) + "-out." + (job.path("format").asText("png").equals("jpeg") ? "jpg" : job.path("format").asText("png"))) : output;
                client.download(id, out);
                System.out.println(id + " succeeded -> " + out);
            } else {
                System.out.println(id + " succeeded: " + job.path("result").asText());
            }
        }
        return failed == 0 ? 0 : 1;
    }

    private static String stem(Path p) {
        String n = p.getFileName().toString();
        int dot = n.lastIndexOf('.');
        return dot > 0 ? n.substring(0, dot) : n;
    }
}
