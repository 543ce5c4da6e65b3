package dev.headroom.core.graph;

/**
 * Channel order of pixel shuffle. For a (H, W, C*r*r) input and output pixel (y*r+i, x*r+j, c):
 * <ul>
 *   <li>TORCH (torch.nn.functional.pixel_shuffle, "CRD"): input channel c*r*r + i*r + j;</li>
 *   <li>TF (tf.nn.depth_to_space, "DCR"): input channel (i*r + j)*C + c.</li>
 * </ul>
 */
public enum ChannelOrder {
    TORCH, TF;

    /** Input channel (of C*r*r) that feeds output channel c at sub-pixel (i, j). */
    public int sourceChannel(int c, int i, int j, int r, int outChannels) {
        return this == TORCH ? c * r * r + i * r + j : (i * r + j) * outChannels + c;
    }
}
