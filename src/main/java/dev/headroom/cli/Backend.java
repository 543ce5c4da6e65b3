package dev.headroom.cli;

import dev.headroom.cuda.CudaException;
import dev.headroom.cuda.CudaUnavailable;
import dev.headroom.runtime.Ops;
import dev.headroom.runtime.cpu.CpuOps;
import dev.headroom.runtime.gpu.CudaOps;

/** Picks the backend for --device: cpu, cuda (or fail saying why), auto (cuda when usable, else cpu). */
final class Backend {
    private Backend() {}

    static Ops open(UpscaleCommand.Device device) {
        return switch (device) {
            case cpu -> new CpuOps();
            case cuda -> {
                try {
                    yield CudaOps.open(0);
                } catch (CudaUnavailable e) {
                    throw new Main.UsageError("--device cuda: " + e.getMessage() + "; use --device cpu");
                }
            }
            case auto -> {
                try {
                    yield CudaOps.open(0);
                } catch (CudaUnavailable | CudaException e) {
                    yield new CpuOps();
                }
            }
        };
    }

    static void close(Ops ops) {
        if (ops instanceof AutoCloseable c) {
            try {
                c.close();
            } catch (Exception e) {
                throw e instanceof RuntimeException r ? r : new IllegalStateException(e);
            }
        }
    }
}
