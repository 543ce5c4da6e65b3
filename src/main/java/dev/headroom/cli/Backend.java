package dev.headroom.cli;

import dev.headroom.core.Precision;
import dev.headroom.cuda.CudaException;
import dev.headroom.cuda.CudaUnavailable;
import dev.headroom.runtime.Session;
import dev.headroom.runtime.cpu.CpuOps;
import dev.headroom.runtime.gpu.CudaOps;

/**
 * Picks the backend for --device (cpu; cuda, or fail saying why; auto: cuda when usable, else cpu)
 * and --precision (fp16 on the GPU unless fp32 is asked for; the CPU computes in fp32 only).
 */
final class Backend {
    private Backend() {}

    static Session open(UpscaleCommand.Device device, String precision) {
        return open(device, precision, dev.headroom.runtime.memory.MemoryOptions.DEFAULT);
    }

    /** A session on a device of its own (the command line runs one job); closing the session closes the device. */
    static Session open(UpscaleCommand.Device device, String precision, dev.headroom.runtime.memory.MemoryOptions memory) {
        Precision gpuPrecision = precision == null ? Precision.F16 : parse(precision);
        if (device == UpscaleCommand.Device.cpu || device == UpscaleCommand.Device.auto && !gpuUsable()) {
            if (precision != null && parse(precision) != Precision.F32) {
                throw new Main.UsageError("--precision " + precision + ": the CPU backend computes in fp32 only; drop --precision or use --device cuda");
            }
            return new CpuOps(memory);
        }
        try {
            return CudaOps.open(0, gpuPrecision, memory);
        } catch (CudaUnavailable e) {
            throw new Main.UsageError("--device cuda: " + e.getMessage() + "; use --device cpu");
        }
    }

    private static Precision parse(String p) {
        try {
            return Precision.parse(p);
        } catch (IllegalArgumentException e) {
            throw new Main.UsageError("--precision: " + e.getMessage());
        }
    }

    private static boolean gpuUsable() {
        try {
            return dev.headroom.cuda.Driver.get().deviceCount() > 0;
        } catch (CudaUnavailable | CudaException e) {
            return false;
        }
    }
}
