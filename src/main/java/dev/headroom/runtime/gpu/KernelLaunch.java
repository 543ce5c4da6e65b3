package dev.headroom.runtime.gpu;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import dev.headroom.cuda.Driver;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/** A kernel launch with its arguments marshalled for cuLaunchKernel: Long (pointers and 64-bit), Integer, Float or Double each. */
final class KernelLaunch {
    private KernelLaunch() {}

    static void launch(Driver cu, MemorySegment fn, int gx, int gy, int bx, int by, MemorySegment stream, Object... args) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment params = a.allocate(ADDRESS, args.length);
            for (int i = 0; i < args.length; i++) {
                MemorySegment v = switch (args[i]) {
                    case Long l -> a.allocateFrom(JAVA_LONG, l);
                    case Integer n -> a.allocateFrom(JAVA_INT, n);
                    case Float f -> a.allocateFrom(JAVA_FLOAT, f);
                    case Double d -> a.allocateFrom(JAVA_DOUBLE, d);
                    default -> throw new IllegalArgumentException("kernel argument " + args[i]);
                };
                params.setAtIndex(ADDRESS, i, v);
            }
            cu.launch(fn, gx, gy, 1, bx, by, 1, 0, stream, params);
        }
    }
}
