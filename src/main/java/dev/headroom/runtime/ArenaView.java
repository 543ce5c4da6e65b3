package dev.headroom.runtime;

/** A tensor's place inside a planned arena: not an allocation of its own, so nothing frees it. */
public record ArenaView(long address, long bytes) implements DeviceBuffer {}
