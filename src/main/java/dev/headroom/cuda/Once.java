package dev.headroom.cuda;

import java.util.function.Supplier;

/** A library binding made once per process, on first use; a failure is not cached (the next call tries again). */
final class Once<T> {
    private final Supplier<T> make;
    private volatile T value;

    Once(Supplier<T> make) {
        this.make = make;
    }

    T get() {
        T v = value;
        if (v == null) {
            synchronized (this) {
                if (value == null) value = make.get();
                v = value;
            }
        }
        return v;
    }
}
