package dev.headroom.runtime.memory;

/**
 * How full a device is, as the share of its budget in live blocks (the allocator's cache does not
 * count: it can be given back at once). Thresholds are fractions of the budget; the defaults are
 * DESIGN.md's: optimal below 60%, warning from 75%, critical from 90%.
 */
public enum Pressure {
    OPTIMAL, ELEVATED, WARNING, CRITICAL;

    /** Where each level above optimal starts, as fractions of the budget, increasing. */
    public record Thresholds(double elevated, double warning, double critical) {
        public static final Thresholds DEFAULT = new Thresholds(0.60, 0.75, 0.90);

        public Thresholds {
            if (!(0 < elevated && elevated <= warning && warning <= critical && critical <= 1)) {
                throw new IllegalArgumentException("pressure thresholds must rise within (0, 1]: " + elevated + ", " + warning + ", " + critical);
            }
        }

        /** Parses "0.6,0.75,0.9". */
        public static Thresholds parse(String s) {
            String[] p = s.split(",");
            if (p.length != 3) throw new IllegalArgumentException("pressure thresholds are three fractions, like 0.6,0.75,0.9; got '" + s + "'");
            return new Thresholds(Double.parseDouble(p[0].trim()), Double.parseDouble(p[1].trim()), Double.parseDouble(p[2].trim()));
        }

        public Pressure of(long used, long budget) {
            double f = (double) used / budget;
            return f >= critical ? CRITICAL : f >= warning ? WARNING : f >= elevated ? ELEVATED : OPTIMAL;
        }
    }
}
