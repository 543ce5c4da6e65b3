package dev.headroom.cli;

import dev.headroom.models.Model;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

@Command(name = "models", description = "Model files.", mixinStandardHelpOptions = true,
        subcommands = {ModelsCommand.Inspect.class})
final class ModelsCommand implements Runnable {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.err);
    }

    @Command(name = "inspect", mixinStandardHelpOptions = true,
            description = "Says what a model file is: format, architecture, scale, parameters, dtype.")
    static final class Inspect implements Callable<Integer> {
        @Parameters(paramLabel = "FILE", description = "Model file (.safetensors, .pth/.pt, .h5, model.json); omit for the default model", arity = "0..1")
        Path file;

        @picocli.CommandLine.Mixin
        OutputOptions output;

        @picocli.CommandLine.Mixin
        WeightsOption weightsOption;


        @Override
        public Integer call() throws Exception {
            Model m = weightsOption.apply(ModelOption.load(file));
            Map<String, Object> info = new LinkedHashMap<>();
            info.put("file", m.file().toString());
            info.put("format", m.format());
            info.put("architecture", m.family());
            info.put("details", m.details());
            info.put("scale", m.scale());
            info.put("parameters", m.parameters());
            info.put("dtype", m.storedType());
            info.put("weight_bytes", m.weights().storedBytes());
            info.put("input_channels", m.graph().inputChannels());
            info.put("value_range", m.valueRange() == 1 ? "0..1" : "0..255");
            info.put("gflop_per_megapixel", Math.round(m.graph().flopsPerInputPixel() * 1e6 / 1e9));
            if (output.json) {
                OutputOptions.printJson(info);
            } else {
                System.out.printf("%s%n  format        %s%n  architecture  %s (%s)%n  scale         x%d%n  parameters    %,d%n  dtype         %s%n  weights       %s%n  value range   %s (%s)%n  cost          %,d GFLOP per input megapixel%n",
                        m.file(), m.format(), m.family(), m.details(), m.scale(), m.parameters(), m.storedType(),
                        dev.headroom.core.Sizes.format(m.weights().storedBytes()), info.get("value_range"), m.rangeSource(), info.get("gflop_per_megapixel"));
            }
            return 0;
        }
    }
}
