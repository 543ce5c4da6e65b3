package dev.headroom.cli;

import dev.headroom.runtime.Session;
import picocli.CommandLine.Option;

/** --device and --precision of the VAE commands, and the session they ask for. */
final class SessionOptions {
    @Option(names = "--precision", paramLabel = "fp16|bf16|fp32", description = "GPU storage precision (default fp16; the CPU computes in fp32)")
    String precision;

    @Option(names = "--device", paramLabel = "auto|cpu|cuda", defaultValue = "auto", description = "Where to run (default: ${DEFAULT-VALUE})")
    UpscaleCommand.Device device;

    Session open(MemoryMixin memory) {
        return Backend.open(device, precision, memory.options());
    }
}
