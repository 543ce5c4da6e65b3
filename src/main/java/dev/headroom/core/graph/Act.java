package dev.headroom.core.graph;

/**
 * An activation: identity, ReLU, leaky ReLU with a slope, PReLU with a per-channel slope
 * tensor named {@code preluWeight}, or SiLU.
 */
public record Act(Kind kind, float slope, String preluWeight) {
    public enum Kind { NONE, RELU, LEAKY_RELU, PRELU, SILU }

    public static final Act NONE = new Act(Kind.NONE, 0f, null);
    public static final Act RELU = new Act(Kind.RELU, 0f, null);
    /** x * sigmoid(x), the diffusion models' activation. */
    public static final Act SILU = new Act(Kind.SILU, 0f, null);

    public static Act leakyRelu(float slope) {
        return new Act(Kind.LEAKY_RELU, slope, null);
    }

    public static Act prelu(String weight) {
        return new Act(Kind.PRELU, 0f, weight);
    }

    /** Scalar form, for references and non-vectorised tails; {@code channelSlope} is used by PRELU only. */
    public float apply(float x, float channelSlope) {
        return switch (kind) {
            case NONE -> x;
            case RELU -> Math.max(x, 0f);
            case LEAKY_RELU -> x >= 0 ? x : x * slope;
            case PRELU -> x >= 0 ? x : x * channelSlope;
            case SILU -> (float) (x / (1.0 + Math.exp(-x)));
        };
    }
}
