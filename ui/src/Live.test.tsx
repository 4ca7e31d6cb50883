import { MantineProvider } from "@mantine/core";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { act, cleanup, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import type { Device, Endpoint, Live, UserSummary } from "./bindings";
import { LivePanel } from "./LiveStatus";
import { deviceStatus } from "./live";
import { TenantView } from "./TenantView";
import { acme } from "./test-fixtures";

afterEach(() => {
  cleanup();
  clearMocks();
});

const ada: UserSummary = {
  id: 1,
  extension: 1000,
  display_name: "Ada",
  email: "ada@acme.example",
  role: "member",
  status: "active",
  device_count: 1,
};

const phone: Device = {
  id: 1,
  user_id: 1,
  label: "Phone",
  sip_username: "acme-1000",
  transport: "udp",
  codecs: ["ulaw"],
  nat: true,
};

function live(endpoints: Record<string, Endpoint>, more: Partial<Live["state"]> = {}): Live {
  return {
    state: {
      endpoints,
      registrations: {},
      channels: {},
      health: {
        version: "22.10.1",
        started: "2026-12-01 20:41:12",
        last_reload: "2026-12-01 20:43:48",
        uptime_s: 3725,
        channels: 0,
        realtime_db: { name: "asterisk", dsn: "asterisk", active: 1, max: 1, last_fail: null },
        checked_at: 0,
      },
      ...more,
    },
    connected: true,
    last_error: null,
    rereads: 1,
    events: 0,
  };
}

const reachable: Endpoint = {
  device_state: "not_in_use",
  contacts: [
    {
      uri: "sip:acme-1000@192.0.2.7:5060",
      state: "reachable",
      rtt_us: 824,
      user_agent: "Yealink T54W",
      source: "192.0.2.7:5060",
      expires_at: null,
      since: 0,
    },
  ],
};

/** The channel the component handed to a watch command, and a way to send on it. */
function watchBackend(watchCmd: string) {
  const opened: number[] = [];
  const closed: number[] = [];
  let channelId: number | null = null;
  let index = 0;
  mockIPC((cmd, args) => {
    const a = args as Record<string, unknown>;
    if (cmd === watchCmd) {
      channelId = (a.updates as { id: number }).id;
      opened.push(7);
      return 7;
    }
    if (cmd === "live_unwatch") {
      closed.push(a.id as number);
      return null;
    }
    if (cmd === "user_list") return [ada];
    if (cmd === "device_list_of_tenant") return [phone];
    if (cmd === "pbx_apply_history") return [];
    throw { code: "internal", message: `unexpected command ${cmd}`, field: null };
  });
  const send = (l: Live) => {
    if (channelId === null) throw new Error("no channel yet");
    const internals = (
      window as unknown as {
        __TAURI_INTERNALS__: { runCallback: (id: number, data: unknown) => void };
      }
    ).__TAURI_INTERNALS__;
    const id = channelId;
    act(() => internals.runCallback(id, { message: l, index: index++ }));
  };
  return { opened, closed, send, ready: () => channelId !== null };
}

describe("live status", () => {
  it("reads a device's status as the backend's registered() does", () => {
    expect(deviceStatus(null, "acme-1000")).toBe("unknown");
    expect(deviceStatus({ ...live({}), connected: false }, "acme-1000")).toBe("unknown");
    expect(deviceStatus(live({}), "acme-1000")).toBe("offline");
    expect(deviceStatus(live({ "acme-1000": reachable }), "acme-1000")).toBe("registered");
    const silent = {
      ...reachable,
      contacts: [{ ...reachable.contacts[0], state: "unreachable" as const }],
    };
    expect(deviceStatus(live({ "acme-1000": silent }), "acme-1000")).toBe("unreachable");
  });

  it("the users list shows a dot per device that follows the PBX without a reload", async () => {
    const b = watchBackend("tenant_watch");
    const view = render(
      <MantineProvider>
        <TenantView tenant={acme} onTenantChanged={() => {}} />
      </MantineProvider>,
    );
    const dot = await screen.findByTestId("device-dot");
    expect(dot.dataset.endpoint).toBe("acme-1000");
    expect(dot.dataset.status).toBe("unknown");
    await waitFor(() => expect(b.ready()).toBe(true));
    b.send(live({ "acme-1000": { device_state: "unavailable", contacts: [] } }));
    await waitFor(() => expect(screen.getByTestId("device-dot").dataset.status).toBe("offline"));
    b.send(live({ "acme-1000": reachable }));
    await waitFor(() => expect(screen.getByTestId("device-dot").dataset.status).toBe("registered"));
    expect(screen.getByTestId("device-dot").getAttribute("aria-label")).toBe(
      "acme-1000: registered",
    );
    // The connection drops: the last known is not shown as current.
    b.send({ ...live({ "acme-1000": reachable }), connected: false, last_error: "lost" });
    await waitFor(() => expect(screen.getByTestId("device-dot").dataset.status).toBe("unknown"));
    view.unmount();
    await waitFor(() => expect(b.closed).toEqual([7]));
  });

  it("the dashboard shows health, trunks, phones and calls as they come", async () => {
    const b = watchBackend("pbx_watch");
    render(
      <MantineProvider>
        <LivePanel pbx="pbx1" />
      </MantineProvider>,
    );
    await waitFor(() => expect(b.ready()).toBe(true));
    b.send(
      live(
        { "acme-1000": reachable, "acme-1001": { device_state: null, contacts: [] } },
        {
          registrations: {
            "pbxdesk-trunk-carrier": {
              name: "pbxdesk-trunk-carrier",
              server_uri: "sip:sip.carrier.example",
              client_uri: "sip:user@sip.carrier.example",
              status: "Rejected",
              since: Date.now(),
            },
          },
          channels: {
            "1.1": {
              channel: "PJSIP/acme-1000-00000001",
              endpoint: "acme-1000",
              caller: "1000",
              connected: "0445551234",
              exten: "0445551234",
              state: "Up",
              linkedid: "1.1",
              bridge: "b1",
              since: Date.now(),
            },
            "1.2": {
              channel: "PJSIP/pbxdesk-trunk-carrier-00000002",
              endpoint: "pbxdesk-trunk-carrier",
              caller: "1000",
              connected: "0445551234",
              exten: "s",
              state: "Up",
              linkedid: "1.1",
              bridge: "b1",
              since: Date.now(),
            },
          },
        },
      ),
    );
    await waitFor(() =>
      expect(screen.getByTestId("live-registered-count").textContent).toBe("1 of 2 registered"),
    );
    expect(screen.getByTestId("live-health").textContent).toContain("Asterisk 22.10.1");
    expect(screen.getByTestId("live-health").textContent).toContain("connected (1/1)");
    expect(screen.getByTestId("live-trunks").textContent).toContain("carrier");
    expect(screen.getByTestId("live-trunks").textContent).toContain("Rejected");
    const calls = screen.getAllByTestId("live-call");
    expect(calls).toHaveLength(1);
    expect(calls[0].textContent).toContain("1000 → 0445551234");
    expect(calls[0].textContent).toContain("via carrier");
    expect(screen.getByTestId("live-last-apply").textContent).toContain("never applied");
  });
});
