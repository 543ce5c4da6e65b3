package dev.headroom.models.arch;

/** A model whose graph or key names headroom cannot build; the message names the layer or key. */
public final class UnsupportedArchitecture extends RuntimeException {
    UnsupportedArchitecture(String msg) {
        super(msg);
    }
}
