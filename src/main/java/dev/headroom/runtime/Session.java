package dev.headroom.runtime;

import dev.headroom.core.Precision;

/**
 * One job's or worker's way onto a {@link Device}: the ops of {@link Ops} issued in order on a
 * stream of its own (on a GPU, with cuDNN and cuBLAS handles bound to that stream and a workspace
 * charged to the device's ledger), in one precision, with its own recorded graphs. Waits are for
 * this session's stream only, never the whole device. Used by one thread at a time; several
 * sessions of one device run from several threads at once. See {@link Device} for an example.
 */
public interface Session extends Ops, AutoCloseable {
    Device device();

    Precision precision();

    /**
     * What the backend has to say about how this session ran, for `bench --json` (CUDA: conv_strategies,
     * conv_choices_recalled, graph_failures, capture_failures); empty where there is nothing.
     */
    default java.util.Map<String, Object> diagnostics() {
        return java.util.Map.of();
    }

    /**
     * Waits for this session's work, then frees what the next job can cheaply make again (on a GPU,
     * the convolution workspace) and keeps what is costly (built convolution plans, handles, the
     * stream): for a session kept between jobs of one device, as the job server keeps them.
     */
    default void trim() {}

    /** Waits for this session's work, then frees its stream, handles and workspace (its cached memory goes back to the device). */
    @Override
    void close();
}
