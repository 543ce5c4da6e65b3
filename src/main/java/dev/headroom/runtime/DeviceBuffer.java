package dev.headroom.runtime;

/**
 * A block of device memory handed out by a backend's allocator: its address and size. The backend
 * that allocated it frees it ({@link Ops#release}); nothing else does.
 */
public interface DeviceBuffer {
    long address();

    long bytes();
}
