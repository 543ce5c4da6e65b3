package dev.headroom.core.diagnose;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What the log says about the job around an incident: the tool, the part of the job that ran
 * (sampling, VAE decode, an upscaler, a colorizer, training), the model file, the resolution and
 * the batch size. Kept as the latest value seen, so memory stays bounded on logs of any size.
 */
public final class JobContext {

    /** A frozen copy for an incident; fields are null where the log did not say. */
    public record Snapshot(String tool, String stage, String model, Integer width, Integer height, Integer batch) {
        public String resolution() {
            return width == null ? null : width + "x" + height;
        }
    }

    private static final Pattern WIDTH_HEIGHT = Pattern.compile("(?i)\\bwidth\\W{1,3}([1-9][0-9]{2,4})\\W{1,6}height\\W{1,3}([1-9][0-9]{2,4})");
    private static final Pattern RESOLUTION_PAIR = Pattern.compile("(?i)resolution\\W{1,4}\\(?([1-9][0-9]{2,4}),\\s?([1-9][0-9]{2,4})");
    private static final Pattern INPUT_SIZE = Pattern.compile("(?i)\\binput[_ ]size\\W{1,3}([1-9][0-9]{2,4})\\b");
    private static final Pattern MODEL_FILE = Pattern.compile("([A-Za-z0-9_][A-Za-z0-9_.+\\-]{1,120}\\.(?:safetensors|ckpt|pth|gguf|sft))\\b");

    private static final String[][] TOOLS = {
            {"Forge", "stable-diffusion-webui-forge", "webui-forge", "Forge "},
            {"SD.Next", "SD.Next", "sdnext", "automatic\\", "automatic/"},
            {"Fooocus", "Fooocus", "fooocus"},
            {"InvokeAI", "InvokeAI", "invokeai"},
            {"kohya sd-scripts", "sd-scripts", "kohya", "train_network.py", "sdxl_train", "train_db.py", "fine_tune.py"},
            {"ComfyUI", "ComfyUI", "comfy/", "comfy\\", "got prompt", "Exception during processing", "execution.py"},
            {"stable-diffusion-webui", "stable-diffusion-webui", "modules/processing.py", "modules\\processing.py", "webui.py"},
            {"diffusers", "diffusers/", "diffusers\\", "DiffusionPipeline", "pipeline_stable_diffusion", "pipeline_flux"},
    };
    private final int[] toolScore = new int[TOOLS.length];
    private int toolHits;

    private String stage, model;
    private Integer width, height, batch;

    /** Reads whatever the line says about the job; {@code lower} is the line in lower case. */
    public void observe(String line, String lower) {
        // a few hundred mentions settle which tool wrote the log; after that, stop paying for the search
        if (toolHits < 500) {
            for (int t = 0; t < TOOLS.length; t++) {
                for (int k = 1; k < TOOLS[t].length; k++) {
                    if (line.contains(TOOLS[t][k])) {
                        toolScore[t]++;
                        toolHits++;
                        break;
                    }
                }
            }
        }
        String s = stageOf(line, lower);
        if (s != null) stage = s;
        if (lower.contains(".safetensors") || lower.contains(".ckpt") || lower.contains(".pth") || lower.contains(".gguf") || lower.contains(".sft")) {
            Matcher m = MODEL_FILE.matcher(line);
            String last = null;
            while (m.find()) last = m.group(1);
            if (last != null && !last.startsWith("model.safetensors.index")) model = last;
        }
        resolution(line, lower);
        int at = lower.indexOf("batch");
        if (at >= 0) {
            Integer b = batchAfter(lower, at);
            if (b != null) batch = b;
        }
    }

    /**
     * Finds "1024x768" (or "1024 x 768", "1024×768") by hand: a regex with look-behind costs
     * microseconds per line, and progress bars print millions of lines.
     */
    private boolean timesPair(String s) {
        for (int i = 1; i + 1 < s.length(); i++) {
            char c = s.charAt(i);
            if (c != 'x' && c != '×') continue;
            int a = i - 1, b = i + 1;
            if (s.charAt(a) == ' ' && a > 0) a--;
            if (s.charAt(b) == ' ' && b + 1 < s.length()) b++;
            if (!Character.isDigit(s.charAt(a)) || !Character.isDigit(s.charAt(b))) continue;
            int a0 = a;
            while (a0 > 0 && Character.isDigit(s.charAt(a0 - 1))) a0--;
            int b1 = b;
            while (b1 < s.length() && Character.isDigit(s.charAt(b1))) b1++;
            // not hex ("0x1f"), not part of a longer token ("1.5x2", "abc640x480")
            if (a0 > 0 && (Character.isLetterOrDigit(s.charAt(a0 - 1)) || s.charAt(a0 - 1) == '.')) continue;
            if (b1 < s.length() && Character.isLetter(s.charAt(b1))) continue;
            if (a + 1 - a0 > 5 || b1 - b > 5 || s.charAt(a0) == '0' || s.charAt(b) == '0') continue;
            int w = Integer.parseInt(s, a0, a + 1, 10), h = Integer.parseInt(s, b, b1, 10);
            if (w >= 64 && h >= 64 && w <= 32768 && h <= 32768) {
                width = w;
                height = h;
                return true;
            }
        }
        return false;
    }

    /** The number within 60 characters after "batch size" / "batch_size" / "train_batch_size", if any. */
    private static Integer batchAfter(String lower, int at) {
        int i = at + 5;
        if (i >= lower.length() || (lower.charAt(i) != '_' && lower.charAt(i) != ' ') || !lower.startsWith("size", i + 1)) return null;
        i += 5;
        int limit = Math.min(lower.length(), i + 60);
        while (i < limit && !Character.isDigit(lower.charAt(i))) {
            if (lower.charAt(i) == '\n') return null;
            i++;
        }
        int j = i;
        while (j < lower.length() && j - i < 4 && Character.isDigit(lower.charAt(j))) j++;
        if (j == i || lower.charAt(i) == '0') return null;
        return Integer.parseInt(lower, i, j, 10);
    }

    public String stage() {
        return stage;
    }

    /** Each pattern runs only on lines that have its anchor, so progress bars cost a character scan, not a regex. */
    private void resolution(String line, String lower) {
        if (lower.contains("width") && pair(WIDTH_HEIGHT, line)) return;
        if (lower.contains("resolution") && pair(RESOLUTION_PAIR, line)) return;
        if (timesPair(line)) return;
        if (lower.contains("input")) {
            Matcher m = INPUT_SIZE.matcher(line);
            if (m.find()) width = height = Integer.parseInt(m.group(1));
        }
    }

    private boolean pair(Pattern p, String line) {
        Matcher m = p.matcher(line);
        while (m.find()) {
            int w = Integer.parseInt(m.group(1)), h = Integer.parseInt(m.group(2));
            if (w >= 64 && h >= 64 && w <= 32768 && h <= 32768) {
                width = w;
                height = h;
                return true;
            }
        }
        return false;
    }

    private static String stageOf(String line, String lower) {
        if (line.contains("SUPIR")) return "SUPIR";
        if (lower.contains("ddcolor")) return "DDColor colorization";
        if (lower.contains("vaedecode") || lower.contains("vae decode") || lower.contains("vae_decode") || lower.contains("decode_first_stage")
                || lower.contains("requested to load autoencoderkl") || lower.contains("vae.decode")) return "VAE decode";
        if (lower.contains("upscale_model") || lower.contains("imageupscalewithmodel") || lower.contains("esrgan") || lower.contains("upscaler")) return "upscaling";
        if (lower.contains("ksampler") || lower.contains("sampling") || lower.contains("denoise_latents") || lower.contains("txt2img") || lower.contains("img2img")) return "sampling";
        if (lower.contains("train_network") || lower.contains("train_util") || lower.contains("optimizer.step") || lower.contains("backward(")) return "training";
        return null;
    }

    public Snapshot snapshot() {
        int best = -1;
        for (int t = 0; t < TOOLS.length; t++) if (toolScore[t] > 0 && (best < 0 || toolScore[t] > toolScore[best] || toolScore[t] == toolScore[best] && t < best)) best = t;
        // Forge and SD.Next are forks of the webui and print its paths too: prefer the fork when it is named at all
        for (int t = 0; t < 2; t++) if (toolScore[t] > 0 && best == 6) best = t;
        return new Snapshot(best < 0 ? null : TOOLS[best][0], stage, model, width, height, batch);
    }
}
