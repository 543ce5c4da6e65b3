package dev.headroom.core;

import java.util.Set;

/** Named tensors a graph binds its weight names to. */
public interface Weights {
    /** The tensor, or an error naming what is missing. */
    TensorData get(String name);

    boolean has(String name);

    Set<String> names();

    /** Bytes the values take in host memory as loaded (fp16 and bf16 files stay 16-bit: {@link TensorData#stored}). */
    default long storedBytes() {
        long n = 0;
        for (String k : names()) n += get(k).storedBytes();
        return n;
    }

    /** Total parameter count. */
    default long parameterCount() {
        long n = 0;
        for (String k : names()) n += get(k).count();
        return n;
    }
}
