package dev.headroom.cli;

import dev.headroom.core.Sizes;
import dev.headroom.cuda.CudaException;
import dev.headroom.cuda.CudaUnavailable;
import dev.headroom.cuda.Cublas;
import dev.headroom.cuda.Cudnn;
import dev.headroom.cuda.Driver;
import dev.headroom.cuda.Nvml;
import dev.headroom.cuda.Nvrtc;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;

@Command(name = "devices", mixinStandardHelpOptions = true,
        description = "Lists the NVIDIA GPUs: name, memory total and free, driver, compute capability, and the CUDA libraries found.")
final class DevicesCommand implements Callable<Integer> {
    @picocli.CommandLine.Mixin
    OutputOptions output;


    @Override
    public Integer call() throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        List<Map<String, Object>> gpus = new ArrayList<>();
        Driver cu;
        try {
            cu = Driver.get();
        } catch (CudaUnavailable | CudaException e) {
            out.put("gpus", gpus);
            out.put("reason", e.getMessage());
            if (output.json) OutputOptions.printJson(out);
            else System.out.println("No usable NVIDIA GPU: " + e.getMessage() + "\nheadroom runs on the CPU here (--device cpu).");
            return 0;
        }
        out.put("cuda_driver", cu.version() / 1000 + "." + cu.version() % 1000 / 10);
        out.put("libcuda", cu.libraryPath());
        Nvml nvml = optional(Nvml::get, out, "nvml");
        if (nvml != null) out.put("driver", nvml.driverVersion());
        Nvrtc nvrtc = optional(Nvrtc::get, out, "nvrtc");
        if (nvrtc != null) out.put("nvrtc", nvrtc.version() + " (" + nvrtc.libraryPath() + ")");
        Cudnn dnn = optional(Cudnn::get, out, "cudnn");
        if (dnn != null) {
            long v = dnn.version();
            out.put("cudnn", v / 10000 + "." + v % 10000 / 100 + "." + v % 100 + " (" + dnn.libraryPath() + ")");
        }
        Cublas blas = optional(Cublas::get, out, "cublas");
        if (blas != null) out.put("cublas", blas.version() + " (" + blas.libraryPath() + ")");
        for (int i = 0; i < cu.deviceCount(); i++) {
            int dev = cu.device(i);
            Map<String, Object> g = new LinkedHashMap<>();
            g.put("index", i);
            g.put("name", cu.deviceName(dev));
            g.put("compute_capability", cu.attribute(Driver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev) + "."
                    + cu.attribute(Driver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev));
            g.put("multiprocessors", cu.attribute(Driver.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev));
            g.put("memory_total_bytes", cu.totalMemory(dev));
            if (nvml != null) {
                Nvml.Memory m = nvml.memory(i);
                g.put("memory_free_bytes", m.free());
                g.put("memory_used_bytes", m.used());
            }
            gpus.add(g);
        }
        out.put("gpus", gpus);
        if (output.json) {
            OutputOptions.printJson(out);
            return 0;
        }
        System.out.printf("CUDA driver %s (%s), NVIDIA driver %s%n", out.get("cuda_driver"), out.get("libcuda"), out.getOrDefault("driver", "?"));
        System.out.printf("NVRTC %s%ncuDNN %s%ncuBLAS %s%n", out.getOrDefault("nvrtc", "missing: " + out.get("nvrtc_error")),
                out.getOrDefault("cudnn", "missing: " + out.get("cudnn_error")), out.getOrDefault("cublas", "missing: " + out.get("cublas_error")));
        for (Map<String, Object> g : gpus) {
            System.out.printf("GPU %s: %s, compute %s, %s SMs, %s total, %s free%n", g.get("index"), g.get("name"), g.get("compute_capability"),
                    g.get("multiprocessors"), Sizes.format((Long) g.get("memory_total_bytes")),
                    g.containsKey("memory_free_bytes") ? Sizes.format((Long) g.get("memory_free_bytes")) : "?");
        }
        if (gpus.isEmpty()) System.out.println("The driver sees no GPU.");
        return 0;
    }

    private static <T> T optional(java.util.function.Supplier<T> open, Map<String, Object> out, String key) {
        try {
            return open.get();
        } catch (CudaUnavailable | CudaException e) {
            out.put(key + "_error", e.getMessage());
            return null;
        }
    }
}
