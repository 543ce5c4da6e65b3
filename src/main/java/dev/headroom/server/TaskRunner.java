package dev.headroom.server;

import java.util.Map;

/** Hands each job to the runner of its task ({@code upscale}, {@code decode}), named in its params. */
public final class TaskRunner implements JobRunner {
    private final Map<String, JobRunner> byTask;

    public TaskRunner(Map<String, JobRunner> byTask) {
        this.byTask = Map.copyOf(byTask);
    }

    /** The server's tasks: upscale and decode. */
    public static TaskRunner standard() {
        return new TaskRunner(Map.of("upscale", new UpscaleJobRunner(), "decode", new DecodeJobRunner()));
    }

    @Override
    public Outcome run(Request r, DeviceSlot device, Control control) throws Exception {
        String task = Workers.task(r.job());
        JobRunner runner = byTask.get(task);
        if (runner == null) throw new IllegalStateException("this server does not run task '" + task + "'");
        return runner.run(r, device, control);
    }
}
