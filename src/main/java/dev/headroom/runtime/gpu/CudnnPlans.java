package dev.headroom.runtime.gpu;

import dev.headroom.cuda.Cudnn;
import dev.headroom.cuda.CudnnGraph;
import dev.headroom.cuda.Driver;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * The native half of a device's {@link PlanService}: its cuDNN handles (on the default stream:
 * they only finalise plans; sessions execute them with their own handle, on their own stream) and
 * the builds {@link Convolutions} asks of it. Every call makes the device's context current first,
 * since workers and borrowing threads may not have it.
 */
final class CudnnPlans implements PlanService.Native<ConvGraph> {
    /** Where a graph waits idle: its shape and its engine configuration's place in the heuristics. */
    record PoolKey(ConvGraph.Spec spec, ConvGraph.Origin origin) {}

    /** A shape's first-choice build, shared by the device's sessions: its fused spec (null where it cannot fuse) and its unfused one. */
    record FirstKey(ConvGraph.Spec fused, ConvGraph.Spec unfused) {}

    /** What a first-choice build found: fused or not and where (strategy null when neither built), and what failed on the way. */
    record Built(Convolutions.Strategy strategy, ConvGraph.Origin origin, List<String> failures) {}

    private final CudaDevice device;
    private final Driver cu = Driver.get();

    CudnnPlans(CudaDevice device) {
        this.device = device;
    }

    /** The service of {@code device}: worker threads for this machine, two more handles than workers (for builds on sessions' threads). */
    static PlanService<ConvGraph> service(CudaDevice device) {
        int threads = PlanService.defaultThreads();
        return new PlanService<>(device.name(), new CudnnPlans(device), threads, threads + 2, 512, 60_000_000_000L);
    }

    @Override
    public Object createHandle() {
        device.bind();
        return Cudnn.get().createHandle(MemorySegment.NULL);
    }

    @Override
    public void destroyHandle(Object handle) {
        device.bind();
        Cudnn.get().destroyHandle((MemorySegment) handle);
    }

    @Override
    public void destroy(ConvGraph graph) {
        device.bind();
        graph.close();
    }

    @Override
    public long freeBytes() {
        device.bind();
        return cu.memInfo()[0];
    }

    /**
     * The work of a shape's first-choice build on a worker: cuDNN's first plan of the fused graph
     * (when there is one), else of the unfused one, left idle in the pool for whichever session takes
     * it up; where it is in the heuristics is the result.
     */
    static java.util.function.Function<Object, Object> firstChoice(CudaDevice device, PlanService<ConvGraph> service, FirstKey k, long maxWorkspace) {
        return handle -> {
            device.bind();
            List<String> failures = new ArrayList<>();
            for (ConvGraph.Spec spec : new ConvGraph.Spec[] {k.fused(), k.unfused()}) {
                if (spec == null) continue;
                try {
                    ConvGraph cg = ConvGraph.build(CudnnGraph.get(), (MemorySegment) handle, spec, maxWorkspace, 1);
                    if (cg != null) {
                        ConvGraph.Origin o = cg.origins.getFirst();
                        store(device, spec, o, cg);
                        service.pool(new PoolKey(spec, o), cg);
                        return new Built(spec.fused() ? Convolutions.Strategy.FUSED : Convolutions.Strategy.GRAPH, o, failures);
                    }
                } catch (RuntimeException e) {
                    failures.add((spec.fused() ? "FUSED" : "GRAPH") + " first choice " + spec + ": " + e.getMessage());
                }
            }
            return new Built(null, null, failures);
        };
    }

    /**
     * A graph of {@code spec} with the one plan at {@code origin} for the calling session: an idle one
     * from the pool, else finalised now with a service handle; null when the heuristics no longer list
     * it there or its workspace is over {@code maxWorkspace}. The caller gives it back ({@link PlanService#giveBack}).
     */
    static ConvGraph lendOrBuild(CudaDevice device, PlanService<ConvGraph> service, ConvGraph.Spec spec, ConvGraph.Origin origin, long maxWorkspace) {
        PoolKey key = new PoolKey(spec, origin);
        ConvGraph g = service.lend(key);
        if (g != null && g.workspaces.getFirst() > maxWorkspace) {
            service.giveBack(key, g);
            g = null;
        }
        if (g != null) return g;
        return service.build(key, h -> {
            device.bind();
            SerializedPlans serialized = device.serializedPlans();
            String name = serializedKey(spec, origin);
            byte[] json = serialized.get(name);
            if (json != null) {
                ConvGraph cg = ConvGraph.fromJson(CudnnGraph.get(), (MemorySegment) h, spec, origin, json);
                if (cg == null) {
                    serialized.refused(name);   // cuDNN would not take it back: built and stored again below
                } else if (cg.workspaces.getFirst() <= maxWorkspace) {
                    return cg;
                } else {
                    cg.close();   // a sound plan that needs more workspace than this session has: so would the same plan rebuilt
                    return null;
                }
            }
            ConvGraph cg = ConvGraph.rebuild(CudnnGraph.get(), (MemorySegment) h, spec, maxWorkspace, origin);
            if (cg != null) store(device, spec, origin, cg);
            return cg;
        });
    }

    /** What a serialised plan is stored under: its spec and its engine configuration's place in the heuristics. */
    static String serializedKey(ConvGraph.Spec spec, ConvGraph.Origin origin) {
        return spec + " " + origin;
    }

    /** Serialises a newly finalised plan for the device kind's other sessions, devices and later processes (a no-op where its engine does not serialise). */
    private static void store(CudaDevice device, ConvGraph.Spec spec, ConvGraph.Origin origin, ConvGraph cg) {
        SerializedPlans serialized = device.serializedPlans();
        String name = serializedKey(spec, origin);
        if (!serialized.holds(name)) serialized.put(name, cg.json());   // serialising copies the kernel: not again for one held
    }
}
