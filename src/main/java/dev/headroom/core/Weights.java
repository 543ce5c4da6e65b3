package dev.headroom.core;

import java.util.Set;

/** Named tensors a graph binds its weight names to. */
public interface Weights {
    /** The tensor, or an error naming what is missing. */
    TensorData get(String name);

    boolean has(String name);

    Set<String> names();

    /** Total parameter count. */
    default long parameterCount() {
        long n = 0;
        for (String k : names()) n += get(k).count();
        return n;
    }
}
