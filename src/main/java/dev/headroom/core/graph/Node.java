package dev.headroom.core.graph;

import java.util.Arrays;

/** One op applied to the outputs of earlier nodes (by id); {@code name} is the layer's name in the file. */
public record Node(int id, Op op, int[] inputs, String name) {
    public Node {
        inputs = inputs.clone();
        for (int in : inputs) {
            if (in < 0 || in >= id) {
                throw new IllegalArgumentException("node " + name + " (#" + id + ") reads #" + in + ", which is not an earlier node");
            }
        }
    }

    @Override
    public int[] inputs() {
        return inputs.clone();
    }

    public int input(int i) {
        return inputs[i];
    }

    public int arity() {
        return inputs.length;
    }

    @Override
    public String toString() {
        return "#" + id + " " + name + " = " + op.kind() + Arrays.toString(inputs);
    }
}
