package dev.headroom.models.format;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A pickle reader that understands exactly what a PyTorch state dict is made of and refuses the
 * rest before acting on it. Like PyTorch's own {@code weights_only} unpickler, it never imports or
 * calls anything: the few globals a state dict names (OrderedDict, the tensor and parameter
 * rebuild functions, storage types) are recognised by name and turned into plain Java values;
 * any other global, and any opcode outside the list below, is an error naming it.
 *
 * <p>Values: dict and OrderedDict become {@link LinkedHashMap}, lists and tuples {@link List},
 * str {@link String}, int {@link Long}, float {@link Double}, bool {@link Boolean}, None null,
 * tensors {@link TensorRef} (data read later by the caller from the storage they name).
 */
public final class RestrictedUnpickler {

    /** A storage named by a persistent id: ('storage', type, key, location, numel). */
    public record StorageRef(String type, String key, long numel) {}

    /** A tensor view of a storage. */
    public record TensorRef(StorageRef storage, long offset, long[] size, long[] stride) {}

    /** Thrown for anything outside the allow-list; nothing has been executed. */
    public static final class Refused extends RuntimeException {
        Refused(String msg) {
            super(msg);
        }
    }

    private record Global(String module, String name) {
        String qualified() {
            return module + "." + name;
        }
    }

    private static final Object MARK = new Object();

    /**
     * Bounds that a state dict stays far below (an SDXL checkpoint pushes about 10^5 values and
     * nests 4 deep) and that keep a hostile pickle from costing more than some 100 MiB of heap or a
     * deep recursion later: hashing or printing a value nested a million deep overflows the stack.
     */
    static final int MAX_VALUES = 2_000_000, MAX_DEPTH = 64;

    private static final List<String> STORAGES = List.of("FloatStorage", "HalfStorage", "BFloat16Storage",
            "DoubleStorage", "LongStorage", "IntStorage", "ShortStorage", "CharStorage", "ByteStorage", "BoolStorage");

    private final ByteBuffer in;
    private final List<Object> stack = new ArrayList<>();
    private final Map<Long, Object> memo = new HashMap<>();
    private int values;

    private RestrictedUnpickler(byte[] data) {
        this.in = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
    }

    public static Object load(byte[] pickle) {
        try {
            Object root = new RestrictedUnpickler(pickle).run();
            checkNesting(root);
            return root;
        } catch (java.nio.BufferUnderflowException | IndexOutOfBoundsException e) {
            throw new Refused("pickle ends early or is malformed");
        } catch (Refused r) {
            throw r;
        } catch (RuntimeException e) {
            // a wrong type where a state dict has a known one, an absurd length, ...
            throw new Refused("pickle has an unexpected structure (" + e.getClass().getSimpleName() + ")");
        }
    }

    private Object run() {
        while (true) {
            int op = in.get() & 0xff;
            switch (op) {
                case 0x80 -> in.get();                                   // PROTO
                case 0x95 -> in.getLong();                               // FRAME
                case '.' -> {                                            // STOP
                    if (stack.size() != 1) throw new Refused("pickle stops with " + stack.size() + " values on the stack");
                    return stack.getFirst();
                }
                case '}' -> push(new LinkedHashMap<>());                 // EMPTY_DICT
                case ']' -> push(new ArrayList<>());                     // EMPTY_LIST
                case ')' -> push(List.of());                             // EMPTY_TUPLE
                case '(' -> push(MARK);                                  // MARK
                case 't' -> push(java.util.Collections.unmodifiableList(popMark())); // TUPLE
                case 0x85 -> push(tuple(1));
                case 0x86 -> push(tuple(2));
                case 0x87 -> push(tuple(3));
                case 'N' -> push(null);
                case 0x88 -> push(Boolean.TRUE);
                case 0x89 -> push(Boolean.FALSE);
                case 'K' -> push((long) (in.get() & 0xff));              // BININT1
                case 'M' -> push((long) (in.getShort() & 0xffff));       // BININT2
                case 'J' -> push((long) in.getInt());                    // BININT
                case 0x8a -> push(long1());                              // LONG1
                case 'G' -> push(in.order(ByteOrder.BIG_ENDIAN).getDouble()); // BINFLOAT
                case 'X' -> push(string(in.getInt()));                   // BINUNICODE
                case 0x8c -> push(string(in.get() & 0xff));              // SHORT_BINUNICODE
                case 0x8d -> push(string((int) Math.min(in.getLong(), Integer.MAX_VALUE))); // BINUNICODE8
                case 'q' -> memo.put((long) (in.get() & 0xff), peek());  // BINPUT
                case 'r' -> memo.put(in.getInt() & 0xffffffffL, peek()); // LONG_BINPUT
                case 0x94 -> memo.put((long) memo.size(), peek());       // MEMOIZE
                case 'h' -> push(memoGet(in.get() & 0xff));              // BINGET
                case 'j' -> push(memoGet(in.getInt() & 0xffffffffL));    // LONG_BINGET
                case 'c' -> push(global(line(), line()));                // GLOBAL
                case 0x93 -> {                                           // STACK_GLOBAL
                    String name = (String) pop();
                    push(global((String) pop(), name));
                }
                case 'Q' -> push(persistent(pop()));                     // BINPERSID
                case 'R' -> {                                            // REDUCE
                    Object args = pop();
                    push(reduce(pop(), (List<?>) args));
                }
                case 'b' -> pop();                                       // BUILD: state of an OrderedDict (_metadata); dropped
                case 's' -> {                                            // SETITEM
                    Object v = pop();
                    Object k = pop();
                    dict(peek()).put(key(k), v);
                }
                case 'u' -> {                                            // SETITEMS
                    List<Object> items = popMark();
                    Map<Object, Object> d = dict(peek());
                    for (int i = 0; i + 1 < items.size(); i += 2) d.put(key(items.get(i)), items.get(i + 1));
                }
                case 'a' -> {                                            // APPEND
                    Object v = pop();
                    list(peek()).add(v);
                }
                case 'e' -> {                                            // APPENDS
                    List<Object> items = popMark();
                    list(peek()).addAll(items);
                }
                default -> throw new Refused(String.format("pickle opcode 0x%02x ('%c') is not used by state dicts; refusing it", op, (char) op));
            }
            in.order(ByteOrder.LITTLE_ENDIAN);
        }
    }

    private Object global(String module, String name) {
        String q = module + "." + name;
        boolean allowed = q.equals("collections.OrderedDict")
                || q.equals("torch._utils._rebuild_tensor_v2")
                || q.equals("torch._utils._rebuild_parameter")
                || (module.equals("torch") && STORAGES.contains(name));
        if (!allowed) {
            throw new Refused("pickle names '" + q + "', which is not part of a state dict; refusing to load it (nothing was executed)");
        }
        return new Global(module, name);
    }

    private Object reduce(Object callable, List<?> args) {
        if (!(callable instanceof Global g)) throw new Refused("pickle calls a value that is not an allowed global");
        return switch (g.qualified()) {
            case "collections.OrderedDict" -> new LinkedHashMap<>();
            case "torch._utils._rebuild_parameter" -> args.getFirst();
            case "torch._utils._rebuild_tensor_v2" -> {
                if (!(args.get(0) instanceof StorageRef s)) throw new Refused("tensor without a storage");
                yield new TensorRef(s, (Long) args.get(1), longs(args.get(2)), longs(args.get(3)));
            }
            default -> throw new Refused("pickle calls '" + g.qualified() + "', which is not allowed");
        };
    }

    private Object persistent(Object pid) {
        if (!(pid instanceof List<?> t) || t.size() < 5 || !"storage".equals(t.get(0)) || !(t.get(1) instanceof Global g)) {
            throw new Refused("a persistent id is not a tensor storage");
        }
        if (!(t.get(2) instanceof String key) || !(t.get(4) instanceof Long numel) || numel < 0) {
            throw new Refused("a tensor storage has no key or a bad element count");
        }
        return new StorageRef(g.name(), key, numel);
    }

    private static long[] longs(Object tuple) {
        List<?> l = (List<?>) tuple;
        long[] out = new long[l.size()];
        for (int i = 0; i < out.length; i++) out[i] = (Long) l.get(i);
        return out;
    }

    private long long1() {
        int n = in.get() & 0xff;
        if (n > 8) throw new Refused("integer of " + n + " bytes in a state dict");
        long v = 0;
        for (int i = 0; i < n; i++) v |= (in.get() & 0xffL) << (8 * i);
        if (n > 0 && n < 8 && (v & (1L << (8 * n - 1))) != 0) v |= -1L << (8 * n);   // sign-extend
        return v;
    }

    private String string(int len) {
        if (len < 0 || len > in.remaining()) throw new Refused("string of " + len + " bytes past the end of the pickle");
        byte[] b = new byte[len];
        in.get(b);
        return new String(b, StandardCharsets.UTF_8);
    }

    private String line() {
        StringBuilder sb = new StringBuilder();
        for (byte b; (b = in.get()) != '\n'; ) {
            sb.append((char) b);
            if (sb.length() > 256) throw new Refused("global name longer than 256 characters");
        }
        return sb.toString();
    }

    private List<Object> tuple(int n) {
        Object[] items = new Object[n];
        for (int i = n - 1; i >= 0; i--) items[i] = pop();
        return java.util.Collections.unmodifiableList(java.util.Arrays.asList(items));
    }

    private List<Object> popMark() {
        int i = stack.size() - 1;
        while (i >= 0 && stack.get(i) != MARK) i--;
        if (i < 0) throw new Refused("pickle has no MARK where one is needed");
        List<Object> items = new ArrayList<>(stack.subList(i + 1, stack.size()));
        stack.subList(i, stack.size()).clear();
        return items;
    }

    private Object memoGet(long k) {
        if (!memo.containsKey(k)) throw new Refused("pickle reads memo slot " + k + " before writing it");
        return memo.get(k);
    }

    @SuppressWarnings("unchecked")
    private static Map<Object, Object> dict(Object o) {
        if (o instanceof Map<?, ?> m) return (Map<Object, Object>) m;
        throw new Refused("pickle sets an item on a " + (o == null ? "None" : o.getClass().getSimpleName()));
    }

    @SuppressWarnings("unchecked")
    private static List<Object> list(Object o) {
        if (o instanceof ArrayList<?> l) return (List<Object>) l;
        throw new Refused("pickle appends to a value that is not a list");
    }

    private void push(Object o) {
        if (++values > MAX_VALUES) throw new Refused("pickle builds more than " + MAX_VALUES + " values; a state dict needs far fewer");
        stack.add(o);
    }

    /** Dict keys are plain values: a container as a key would be hashed, however deep it nests. */
    private static Object key(Object k) {
        if (k == null || k instanceof String || k instanceof Long || k instanceof Double || k instanceof Boolean) return k;
        throw new Refused("pickle uses a " + k.getClass().getSimpleName() + " as a dict key; state dicts key by names and numbers");
    }

    /**
     * Refuses values nested deeper than {@link #MAX_DEPTH} and values that contain themselves (a
     * list appended to itself through the memo), without recursion: heights are computed bottom-up
     * with an explicit stack, each shared value once.
     */
    static void checkNesting(Object root) {
        if (!container(root)) return;
        java.util.IdentityHashMap<Object, Integer> height = new java.util.IdentityHashMap<>();   // containers done: levels below and at them
        java.util.IdentityHashMap<Object, Boolean> onPath = new java.util.IdentityHashMap<>();
        java.util.ArrayDeque<Frame> path = new java.util.ArrayDeque<>();
        path.push(new Frame(root));
        onPath.put(root, true);
        while (!path.isEmpty()) {
            Frame f = path.peek();
            if (f.children.hasNext()) {
                Object c = f.children.next();
                if (!container(c)) continue;
                Integer done = height.get(c);
                if (done != null) {
                    f.below = Math.max(f.below, done);
                    if (path.size() + done > MAX_DEPTH) throw tooDeep();
                    continue;
                }
                if (onPath.containsKey(c)) throw new Refused("pickle builds a value that contains itself");
                if (path.size() + 1 > MAX_DEPTH) throw tooDeep();
                onPath.put(c, true);
                path.push(new Frame(c));
            } else {
                path.pop();
                onPath.remove(f.value);
                height.put(f.value, f.below + 1);
                if (!path.isEmpty()) path.peek().below = Math.max(path.peek().below, f.below + 1);
            }
        }
    }

    private static final class Frame {
        final Object value;
        final java.util.Iterator<?> children;
        int below;

        Frame(Object value) {
            this.value = value;
            this.children = switch (value) {
                case Map<?, ?> m -> m.values().iterator();
                case List<?> l -> l.iterator();
                default -> java.util.Collections.emptyIterator();
            };
        }
    }

    private static Refused tooDeep() {
        return new Refused("pickle nests values more than " + MAX_DEPTH + " deep; a state dict nests a few");
    }

    private static boolean container(Object o) {
        return o instanceof List<?> || o instanceof Map<?, ?> || o instanceof TensorRef;
    }


    private Object pop() {
        if (stack.isEmpty()) throw new Refused("pickle pops an empty stack");
        return stack.removeLast();
    }

    private Object peek() {
        if (stack.isEmpty()) throw new Refused("pickle reads an empty stack");
        return stack.getLast();
    }
}
