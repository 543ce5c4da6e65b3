package dev.headroom.core.tiling;

/**
 * One tile's extent along one axis: {@code start} and {@code length} in input pixels, and the
 * blend weight of each of its {@code length * scale} output pixels.
 */
public record AxisSpan(int start, int length, float[] weights) {
    public float weight(int outPixel) {
        return weights[outPixel];
    }
}
