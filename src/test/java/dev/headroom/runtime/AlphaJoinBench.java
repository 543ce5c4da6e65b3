package dev.headroom.runtime;

import dev.headroom.core.image.InputImage;
import dev.headroom.models.image.Encoding;
import dev.headroom.models.image.ImageFiles;
import dev.headroom.models.image.ImageWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

/**
 * The host side of an x4 job's rows to the writer, without the model (issue 19): colour samples, as the
 * device window hands them over in bands, go to the PNG writer, straight for an RGB input, through
 * {@link JoinedRows} (the alpha resampled from the input and joined) for RGBA and gray+alpha inputs.
 * Prints milliseconds for each file: whole phase (join + encode + write) and the alpha resample alone.
 * Run by scripts/bench/alpha-join. Usage: AlphaJoinBench BAND_ROWS FILE...
 */
public final class AlphaJoinBench {
    public static void main(String[] args) throws Exception {
        if (args[0].equals("make")) {   // make SIZE DIR: rgb, rgba, rgba16 and ga PNGs (smooth gradients with noise)
            int n = Integer.parseInt(args[1]);
            Random r = new Random(1);
            for (String kind : new String[] {"rgb", "rgba", "rgba16", "ga"}) {
                int c = kind.equals("ga") ? 2 : kind.equals("rgb") ? 3 : 4;
                var img = dev.headroom.core.image.FloatImage.blank(n, n, c, kind.endsWith("16") ? 16 : 8);
                float[] d = img.data();
                for (int y = 0; y < n; y++)
                    for (int x = 0; x < n; x++)
                        for (int ch = 0; ch < c; ch++)
                            d[(y * n + x) * c + ch] = Math.clamp((float) ((x + y * (ch + 1)) % n) / n + (float) r.nextGaussian() * 0.02f, 0f, 1f);
                ImageFiles.writePng(img, Path.of(args[2], "aj-" + n + "-" + kind + ".png"));
            }
            return;
        }
        int band = Integer.parseInt(args[0]), scale = 4;
        for (int a = 1; a < args.length; a++) {
            Path file = Path.of(args[a]);
            for (int run = 0; run < 2; run++) {
                long resampleMs = -1, joinMs = -1;
                try (InputImage in = ImageFiles.readInput(file, Long.MAX_VALUE, ImageFiles.ReadOptions.STRICT).image()) {
                    int c = in.channels(), outW = in.width() * scale, outH = in.height() * scale;
                    boolean alpha = c == 2 || c == 4;
                    if (alpha) {
                        long t0 = System.nanoTime();
                        int bytes = in.bitDepth() / 8;
                        byte[] color = new byte[band * outW * (c - 1) * bytes];
                        var discard = new dev.headroom.core.image.SampleSink() {
                            public int sampleBits() { return in.bitDepth(); }
                            public void sampleRows(byte[] samples, int offset, int rows) {}
                            public void rows(float[] data, int offset, int rows) {}
                        };
                        var joined = new JoinedRows(in, 3, scale, discard);
                        for (int y = 0; y < outH; y += band) joined.sampleRows(color, 0, Math.min(band, outH - y));
                        joinMs = (System.nanoTime() - t0) / 1_000_000;
                    }
                }
                try (InputImage in = ImageFiles.readInput(file, Long.MAX_VALUE, ImageFiles.ReadOptions.STRICT).image()) {
                    int c = in.channels(), outW = in.width() * scale, outH = in.height() * scale;
                    if (c == 2 || c == 4) {
                        long t0 = System.nanoTime();
                        try (InputImage av = in.channels(c - 1, 1)) {
                            var rows = new dev.headroom.core.image.Resample.Rows(av, outW, outH);
                            float[] dst = new float[JoinedRows.ALPHA_ROWS * outW];
                            for (int y = 0; y < outH; y += JoinedRows.ALPHA_ROWS) rows.rows(y, Math.min(JoinedRows.ALPHA_ROWS, outH - y), dst);
                        }
                        resampleMs = (System.nanoTime() - t0) / 1_000_000;
                    }
                }
                try (InputImage in = ImageFiles.readInput(file, Long.MAX_VALUE, ImageFiles.ReadOptions.STRICT).image()) {
                    int c = in.channels(), outW = in.width() * scale, outH = in.height() * scale;
                    boolean alpha = c == 2 || c == 4;
                    int cc = alpha ? c - 1 : c, bytes = in.bitDepth() / 8;
                    byte[] color = new byte[band * outW * cc * bytes];
                    new Random(7).nextBytes(color);
                    Path out = Files.createTempFile("alpha-join", ".png");
                    long t0 = System.nanoTime();
                    try (ImageWriter w = ImageWriter.open(out, Encoding.png(), outW, outH, c, in.bitDepth())) {
                        dev.headroom.core.image.SampleSink sink = alpha ? new JoinedRows(in, 3, scale, w) : w;
                        for (int y = 0; y < outH; y += band) sink.sampleRows(color, 0, Math.min(band, outH - y));
                        w.finish();
                    }
                    long ms = (System.nanoTime() - t0) / 1_000_000;
                    System.out.printf("%s: %d channels, %d bits, %dx%d out: rows to writer %d ms, join alone (resample included) %s, alpha resample alone %s, output %d MB%n",
                            file.getFileName(), c, in.bitDepth(), outW, outH, ms, joinMs < 0 ? "-" : joinMs + " ms", resampleMs < 0 ? "-" : resampleMs + " ms", Files.size(out) >> 20);
                    Files.delete(out);
                }
            }
        }
    }
}
