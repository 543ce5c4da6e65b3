package dev.headroom.cli;

import dev.headroom.runtime.Session;
import picocli.CommandLine.Option;

/** --device, --precision and the memory options ({@link MemoryMixin}) of the commands that run a model (upscale, bench, decode, encode), and the session they ask for. */
final class SessionOptions {
    @Option(names = "--precision", paramLabel = "fp16|bf16|fp32", description = "GPU storage precision (default fp16; the CPU computes in fp32)")
    String precision;

    @Option(names = "--device", paramLabel = "auto|cpu|cuda", defaultValue = "auto", description = {"Where to run (default: ${DEFAULT-VALUE}).",
            "On CUDA, HEADROOM_CONV_START=background|first|precompiled sets how a convolution shape with no timed choice starts: background "
            + "(the default) runs engines that ship compiled while cuDNN's first choices build on the device's plan workers; first waits for them"})
    UpscaleCommand.Device device;

    @picocli.CommandLine.Mixin
    MemoryMixin memory;

    Session open() {
        return Backend.open(device, precision, memory.options());
    }
}
