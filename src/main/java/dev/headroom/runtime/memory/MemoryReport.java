package dev.headroom.runtime.memory;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.headroom.core.Sizes;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.geom.Path2D;
import java.awt.image.BufferedImage;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * A {@link MemoryTrace} (as JSON lines, from {@code --memory-trace} or a server job's trace) drawn
 * as a timeline of device memory by category (weights, activations, workspace, and the allocator's
 * cache on top up to reserved), with the peak, every rung of the degrade ladder, and every model
 * loaded from its file, evicted, or reloaded from its host copy (the residency manager's LOAD,
 * EVICT and RELOAD events) marked and listed: an HTML
 * page (inline SVG, no script, no external resource) or a PNG. Used by {@code headroom
 * memory-report} and by {@code headroom serve}'s per-job report. A malformed trace is an
 * {@link IllegalArgumentException} naming the file and line.
 */
public final class MemoryReport {
    private MemoryReport() {}

    public static final String[] CATEGORIES = {"weights", "workspace", "activations", "cache"};
    static final Color[] COLORS = {new Color(0x4C72B0), new Color(0xDD8452), new Color(0x55A868), new Color(0xC8C8C8)};
    static final int W = 1100, H = 420, LEFT = 80, RIGHT = 20, TOP = 30, BOTTOM = 50;

    /** One point of the timeline: time and bytes per category (cache = reserved - allocated). */
    public record Point(double seconds, long[] bytes) {
        public long total() {
            long t = 0;
            for (long b : bytes) t += b;
            return t;
        }
    }

    public record Marker(double seconds, String label) {}

    /** A model's weights loaded from its file, evicted, or reloaded from its host copy: kind is "load", "evict" or "reload". */
    public record ModelEvent(double seconds, String kind, String model, long bytes, String detail) {}

    static final String[] MODEL_KINDS = {"load", "evict", "reload"};
    static final Color[] MODEL_COLORS = {new Color(0x1F3A93), new Color(0x8E44AD), new Color(0x117A65)};

    public record Timeline(List<Point> points, List<Marker> markers, List<ModelEvent> models, int peakIndex, long events) {
        /** The same timeline with peakIndex at the point of most allocated bytes. */
        Timeline withPeak() {
            int p = 0;
            for (int i = 0; i < points.size(); i++) {
                Point q = points.get(i), best = points.get(p);
                if (q.total() - q.bytes[3] > best.total() - best.bytes[3]) p = i;
            }
            return new Timeline(points, markers, models, p, events);
        }
    }

    public static Timeline read(Path file) throws IOException {
        ObjectMapper json = new ObjectMapper();
        List<Point> points = new ArrayList<>();
        List<Marker> markers = new ArrayList<>();
        List<ModelEvent> models = new ArrayList<>();
        long[] live = new long[3];
        long events = 0;
        int peak = 0;
        long peakAllocated = -1;
        // strict UTF-8: a binary file is refused (CharacterCodingException), not read as replacement characters
        try (BufferedReader r = new BufferedReader(new java.io.InputStreamReader(Files.newInputStream(file),
                java.nio.charset.StandardCharsets.UTF_8.newDecoder()), 1 << 16)) {
            String line;
            int n = 0;
            while ((line = r.readLine()) != null) {
                n++;
                if (line.isBlank()) continue;
                JsonNode e;
                try {
                    e = json.readTree(line);
                } catch (com.fasterxml.jackson.core.JsonProcessingException ex) {
                    throw new IllegalArgumentException(file + " line " + n + " is not a trace event (JSON): " + ex.getOriginalMessage());
                }
                if (e == null || !e.has("kind") || !e.has("t_ns")) throw new IllegalArgumentException(file + " line " + n + " is not a trace event: no kind or t_ns");
                events++;
                String kind = e.get("kind").asText();
                double s = e.get("t_ns").asLong() / 1e9;
                long bytes = e.path("bytes").asLong();
                String category = e.path("category").asText("activations");
                // weights, and one model's weights (weights/<model>); activations, and a job's activations (named after the job)
                int cat = category.equals("weights") || category.startsWith("weights/") ? 0 : category.equals("workspace") ? 1 : 2;
                switch (kind) {
                    case "alloc" -> live[cat] += bytes;
                    case "free" -> live[cat] -= bytes;
                    case "rung" -> markers.add(new Marker(s, e.path("category").asText() + " " + e.path("detail").asText("")));
                    case "oom" -> markers.add(new Marker(s, "OOM " + Sizes.format(bytes)));
                    case "load", "evict", "reload" -> models.add(new ModelEvent(s, kind,
                            category.startsWith("weights/") ? category.substring("weights/".length()) : category, bytes, e.path("detail").asText("")));
                    default -> { }
                }
                long reserved = e.path("reserved").asLong();
                long allocated = live[0] + live[1] + live[2];
                // a trace whose oldest events were dropped may free what it never saw allocated: clamp at zero
                points.add(new Point(s, new long[] {Math.max(0, live[0]), Math.max(0, live[1]), Math.max(0, live[2]), Math.max(0, reserved - allocated)}));
                if (allocated > peakAllocated) {
                    peakAllocated = allocated;
                    peak = points.size() - 1;
                }
            }
        }
        return new Timeline(thin(points, peak), markers, models, 0, events).withPeak();
    }

    /** At most a few points per pixel column: per column, the point with the most bytes (the peak is always kept). */
    private static List<Point> thin(List<Point> points, int peak) {
        int columns = 2 * (W - LEFT - RIGHT);
        if (points.size() <= 2 * columns) return points;
        double end = Math.max(points.getLast().seconds, 1e-9);
        Point[] best = new Point[columns + 1];
        for (int i = 0; i < points.size(); i++) {
            Point p = points.get(i);
            int col = (int) (columns * p.seconds / end);
            if (best[col] == null || p.total() > best[col].total() || i == peak) best[col] = p;
        }
        List<Point> out = new ArrayList<>();
        for (Point p : best) if (p != null) out.add(p);
        return out;
    }

    private static double maxBytes(Timeline t) {
        long m = 1;
        for (Point p : t.points) m = Math.max(m, p.total());
        return m * 1.05;
    }

    private static double x(Timeline t, double s) {
        double end = Math.max(t.points.getLast().seconds, 1e-9);
        return LEFT + (W - LEFT - RIGHT) * s / end;
    }

    private static double y(double bytes, double max) {
        return H - BOTTOM - (H - TOP - BOTTOM) * bytes / max;
    }

    /** The outline of category {@code c} stacked on those below it, as (x, y) pairs: top edge forwards, bottom edge back. */
    private static List<double[]> band(Timeline t, int c, double max) {
        List<double[]> top = new ArrayList<>(), bottom = new ArrayList<>();
        double[] prevTop = null, prevBottom = null;
        for (Point p : t.points) {
            long below = 0;
            for (int i = 0; i < c; i++) below += p.bytes[i];
            double px = x(t, p.seconds);
            if (prevTop != null) {   // memory holds its value until the next event: draw steps, not slopes
                top.add(new double[] {px, prevTop[1]});
                bottom.add(new double[] {px, prevBottom[1]});
            }
            prevTop = new double[] {px, y(below + p.bytes[c], max)};
            prevBottom = new double[] {px, y(below, max)};
            top.add(prevTop);
            bottom.add(prevBottom);
        }
        List<double[]> out = new ArrayList<>(top);
        for (int i = bottom.size() - 1; i >= 0; i--) out.add(bottom.get(i));
        return out;
    }

    public static String html(Timeline t) {
        double max = maxBytes(t);
        StringBuilder s = new StringBuilder();
        s.append("<!doctype html><meta charset=utf-8><title>headroom memory report</title>")
                .append("<style>body{font:14px sans-serif;margin:20px}td,th{padding:2px 10px;text-align:right}</style>")
                .append("<h1>Device memory over time</h1>");
        s.append(String.format(Locale.ROOT, "<svg width=%d height=%d xmlns='http://www.w3.org/2000/svg' style='font:12px sans-serif'>", W, H));
        for (int c = 0; c < CATEGORIES.length; c++) {
            s.append("<path fill='#").append(String.format("%06X", COLORS[c].getRGB() & 0xFFFFFF)).append("' d='");
            List<double[]> b = band(t, c, max);
            for (int i = 0; i < b.size(); i++) s.append(i == 0 ? "M" : "L").append(String.format(Locale.ROOT, "%.1f,%.1f ", b.get(i)[0], b.get(i)[1]));
            s.append("Z'><title>").append(CATEGORIES[c]).append("</title></path>");
        }
        for (int i = 0; i <= 4; i++) {
            double v = max * i / 4;
            s.append(String.format(Locale.ROOT, "<line x1=%d x2=%d y1=%.1f y2=%.1f stroke='#eee'/><text x=4 y=%.1f>%s</text>", LEFT, W - RIGHT, y(v, max), y(v, max), y(v, max) + 4, Sizes.format((long) v)));
        }
        Point peak = t.points.get(t.peakIndex);
        double px = x(t, peak.seconds);
        s.append(String.format(Locale.ROOT, "<line x1=%.1f x2=%.1f y1=%d y2=%d stroke='black' stroke-dasharray='4'/><text x=%.1f y=%d text-anchor=%s>peak %s allocated</text>",
                px, px, TOP, H - BOTTOM, px > W / 2 ? px - 4 : px + 4, TOP - 8, px > W / 2 ? "end" : "start", Sizes.format(peak.total() - peak.bytes[3])));
        for (Marker m : t.markers) {
            double mx = x(t, m.seconds);
            s.append(String.format(Locale.ROOT, "<line x1=%.1f x2=%.1f y1=%d y2=%d stroke='red'><title>%s</title></line>", mx, mx, TOP, H - BOTTOM, escape(m.label)));
        }
        for (ModelEvent m : t.models) {
            double mx = x(t, m.seconds);
            s.append(String.format(Locale.ROOT, "<line x1=%.1f x2=%.1f y1=%d y2=%d stroke='#%06X' stroke-dasharray='2'><title>%s</title></line>", mx, mx, TOP, H - BOTTOM,
                    MODEL_COLORS[kindIndex(m.kind)].getRGB() & 0xFFFFFF, escape(m.kind + " " + m.model + " " + Sizes.format(m.bytes) + ": " + m.detail)));
        }
        s.append(String.format(Locale.ROOT, "<text x=%d y=%d>0 s</text><text x=%d y=%d text-anchor=end>%.3f s</text>", LEFT, H - BOTTOM + 16, W - RIGHT, H - BOTTOM + 16, t.points.getLast().seconds));
        for (int c = 0; c < CATEGORIES.length; c++) {
            s.append(String.format(Locale.ROOT, "<rect x=%d y=%d width=12 height=12 fill='#%06X'/><text x=%d y=%d>%s</text>", LEFT + c * 140, H - 20,
                    COLORS[c].getRGB() & 0xFFFFFF, LEFT + c * 140 + 16, H - 10, CATEGORIES[c] + (c == 3 ? " (reserved, unused)" : "")));
        }
        s.append("</svg><h2>At the peak</h2><table>");
        for (int c = 0; c < CATEGORIES.length; c++) s.append("<tr><th>").append(CATEGORIES[c]).append("<td>").append(Sizes.format(peak.bytes[c]));
        s.append("</table><h2>Rungs of the degrade ladder</h2>").append(t.markers.isEmpty() ? "<p>none" : "<ul>");
        for (Marker m : t.markers) s.append(String.format(Locale.ROOT, "<li>%.3f s: %s", m.seconds, escape(m.label)));
        s.append(t.markers.isEmpty() ? "" : "</ul>");
        s.append("<h2>Model weights: loads, evictions, reloads</h2>");
        if (t.models.isEmpty()) {
            s.append("<p>none");
        } else {
            s.append("<p>");
            for (int k = 0; k < MODEL_KINDS.length; k++) {
                String kind = MODEL_KINDS[k];
                s.append(String.format("<span style='color:#%06X'>&#9474; %s</span> %d&nbsp;&nbsp; ", MODEL_COLORS[k].getRGB() & 0xFFFFFF, kind,
                        t.models.stream().filter(m -> m.kind.equals(kind)).count()));
            }
            s.append("<table><tr><th>time<th>event<th>model<th>bytes<th style='text-align:left'>detail");
            for (ModelEvent m : t.models) {
                s.append(String.format(Locale.ROOT, "<tr><td>%.3f s<td>%s<td>%s<td>%s<td style='text-align:left'>%s", m.seconds, m.kind, escape(m.model),
                        Sizes.format(m.bytes), escape(m.detail)));
            }
            s.append("</table>");
        }
        s.append(String.format("<p>%d events.", t.events));
        return s.toString();
    }

    private static int kindIndex(String kind) {
        for (int k = 0; k < MODEL_KINDS.length; k++) if (MODEL_KINDS[k].equals(kind)) return k;
        return 0;
    }

    private static String escape(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace("'", "&#39;");
    }

    /**
     * Whether text can be drawn: a server without fontconfig throws from the first font use, and
     * the chart is still worth having without labels (the HTML report has them all).
     */
    private static boolean fontsWork(Graphics2D g) {
        try {
            g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
            g.getFontMetrics().stringWidth("0");
            return true;
        } catch (Throwable e) {
            System.err.println("memory-report: no usable fonts on this machine (" + e.getMessage() + "); the PNG has no labels, the HTML report has them");
            return false;
        }
    }

    public static BufferedImage png(Timeline t) {
        double max = maxBytes(t);
        BufferedImage img = new BufferedImage(W, H, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, W, H);
        boolean text = fontsWork(g);
        for (int c = 0; c < CATEGORIES.length; c++) {
            Path2D.Double path = new Path2D.Double();
            List<double[]> b = band(t, c, max);
            path.moveTo(b.getFirst()[0], b.getFirst()[1]);
            for (double[] p : b) path.lineTo(p[0], p[1]);
            path.closePath();
            g.setColor(COLORS[c]);
            g.fill(path);
            g.fillRect(LEFT + c * 140, H - 20, 12, 12);
            g.setColor(Color.BLACK);
            if (text) g.drawString(CATEGORIES[c] + (c == 3 ? " (reserved, unused)" : ""), LEFT + c * 140 + 16, H - 10);
        }
        g.setColor(Color.BLACK);
        if (text) for (int i = 0; i <= 4; i++) g.drawString(Sizes.format((long) (max * i / 4)), 4, (int) y(max * i / 4, max) + 4);
        Point peak = t.points.get(t.peakIndex);
        int px = (int) x(t, peak.seconds);
        g.setStroke(new BasicStroke(1, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 1, new float[] {4, 4}, 0));
        g.drawLine(px, TOP, px, H - BOTTOM);
        String label = "peak " + Sizes.format(peak.total() - peak.bytes[3]) + " allocated";
        if (text) g.drawString(label, px > W / 2 ? px - 4 - g.getFontMetrics().stringWidth(label) : px + 4, TOP - 8);
        g.setStroke(new BasicStroke(1));
        g.setColor(Color.RED);
        for (Marker m : t.markers) g.drawLine((int) x(t, m.seconds), TOP, (int) x(t, m.seconds), H - BOTTOM);
        g.setStroke(new BasicStroke(1, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 1, new float[] {2, 2}, 0));
        for (ModelEvent m : t.models) {
            g.setColor(MODEL_COLORS[kindIndex(m.kind)]);
            g.drawLine((int) x(t, m.seconds), TOP, (int) x(t, m.seconds), H - BOTTOM);
        }
        if (text && !t.models.isEmpty()) {
            for (int k = 0; k < MODEL_KINDS.length; k++) {
                g.setColor(MODEL_COLORS[k]);
                g.drawString("| " + MODEL_KINDS[k], W - RIGHT - 200 + k * 66, TOP - 8);
            }
        }
        g.dispose();
        return img;
    }
}
