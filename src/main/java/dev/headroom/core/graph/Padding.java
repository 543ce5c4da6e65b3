package dev.headroom.core.graph;

/** Convolution padding: SAME keeps the spatial size (zeros around), VALID uses no padding. */
public enum Padding { SAME, VALID }
