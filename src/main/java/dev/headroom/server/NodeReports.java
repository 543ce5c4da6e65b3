package dev.headroom.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The node registry's rows, both ways: what this server reports about itself at each heartbeat
 * (devices, free slots, resident models), and what it reads from the others' rows for placement.
 */
final class NodeReports {
    private NodeReports() {}

    /** This server's row: each device's budget, headroom and jobs, its resident models, and the slots it has free (none while draining). */
    static JobStore.Node of(JobStore.Owner owner, String url, List<DeviceSlot> devices, long started, boolean accepting) {
        List<Map<String, Object>> ds = new ArrayList<>();
        Set<String> resident = new TreeSet<>();
        int running = 0, free = 0;
        for (DeviceSlot d : devices) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("name", d.name());
            m.put("kind", d.gpu() ? "cuda" : "cpu");
            m.put("budget_bytes", d.budget());
            m.put("headroom_bytes", d.headroom());
            m.put("running", d.runningCount());
            m.put("max_running", d.maxRunning());
            m.put("models_resident", d.residentModels());
            ds.add(m);
            running += d.runningCount();
            free += d.freeSlots();
            resident.addAll(d.residentModels());
        }
        try {
            return new JobStore.Node(owner.node(), owner.toString(), url, HttpApi.JSON.writeValueAsString(ds), HttpApi.JSON.writeValueAsString(resident),
                    running, accepting ? free : 0, started, 0);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Models resident on other live nodes that have a free slot: jobs for them are left to those nodes for a while. */
    static Set<String> residentOnIdleOthers(List<JobStore.Node> nodes, String self, long aliveMillis) {
        Set<String> out = new HashSet<>();
        for (JobStore.Node n : nodes) {
            if (n.name().equals(self) || n.ageMillis() > aliveMillis || n.freeSlots() <= 0) continue;
            try {
                HttpApi.JSON.readTree(n.models()).forEach(m -> out.add(m.asText()));
            } catch (IOException e) {
                // a row from another version of headroom: no placement hint from it
            }
        }
        return out;
    }
}
