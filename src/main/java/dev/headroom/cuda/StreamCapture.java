package dev.headroom.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * CUDA graphs made by stream capture: work issued on a stream between {@link #begin} and
 * {@link #end} is recorded, not run; {@link #instantiate} turns the recording into an executable
 * graph that {@link #launch} replays with one call, however many kernels it holds. Kernel
 * arguments, and so every device pointer, are frozen at capture.
 *
 * <p>Capture runs in thread-local mode: a call in the capturing thread that is not allowed
 * during capture (cuMemAlloc, a synchronous copy, a context synchronisation) fails and
 * invalidates the capture instead of running, so a recording never silently leaves work out.
 */
public final class StreamCapture {
    private static final Once<StreamCapture> INSTANCE = new Once<>(StreamCapture::new);
    /** CU_STREAM_CAPTURE_MODE_THREAD_LOCAL. */
    private static final int MODE_THREAD_LOCAL = 1;

    private final Driver cu = Driver.get();
    private final MethodHandle begin, end, instantiate, launch, execDestroy, graphDestroy;

    private StreamCapture() {
        NativeLibraries.Library lib = NativeLibraries.load("the CUDA driver (libcuda)", "HEADROOM_LIBCUDA", "libcuda.so.1", "libcuda.so");
        begin = lib.function("cuStreamBeginCapture_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        end = lib.function("cuStreamEndCapture", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        instantiate = lib.function("cuGraphInstantiateWithFlags", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG));
        launch = lib.function("cuGraphLaunch", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        execDestroy = lib.function("cuGraphExecDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        graphDestroy = lib.function("cuGraphDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
    }

    public static StreamCapture get() {
        return INSTANCE.get();
    }

    /** Starts recording {@code stream} (not the legacy default stream, which cannot be captured). */
    public void begin(MemorySegment stream) {
        cu.check(Driver.call(() -> (int) begin.invokeExact(stream, MODE_THREAD_LOCAL)), "cuStreamBeginCapture_v2");
    }

    /**
     * Ends recording and returns the graph. Always call it after {@link #begin}, also when the
     * captured work failed: it is what takes the stream out of capture mode (it then throws,
     * typically CUDA_ERROR_STREAM_CAPTURE_INVALIDATED).
     */
    public MemorySegment end(MemorySegment stream) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment g = a.allocate(ADDRESS);
            cu.check(Driver.call(() -> (int) end.invokeExact(stream, g)), "cuStreamEndCapture");
            return g.get(ADDRESS, 0);
        }
    }

    public MemorySegment instantiate(MemorySegment graph) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment e = a.allocate(ADDRESS);
            cu.check(Driver.call(() -> (int) instantiate.invokeExact(e, graph, 0L)), "cuGraphInstantiateWithFlags");
            return e.get(ADDRESS, 0);
        }
    }

    public void launch(MemorySegment exec, MemorySegment stream) {
        cu.check(Driver.call(() -> (int) launch.invokeExact(exec, stream)), "cuGraphLaunch");
    }

    public void destroyExec(MemorySegment exec) {
        cu.check(Driver.call(() -> (int) execDestroy.invokeExact(exec)), "cuGraphExecDestroy");
    }

    public void destroyGraph(MemorySegment graph) {
        cu.check(Driver.call(() -> (int) graphDestroy.invokeExact(graph)), "cuGraphDestroy");
    }
}
