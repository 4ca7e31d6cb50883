// The live PBX in the window: a view opened over a Tauri channel (the backend sends the whole
// state at once and after each change, at most every 50 ms), closed when the component goes.
import { Channel } from "@tauri-apps/api/core";
import { useEffect, useState } from "react";
import { call } from "./api";
import { commands, type Endpoint, type Live } from "./bindings";

export type LiveView = {
  live: Live | null;
  /** Why the view could not be opened (untrusted host key, no AMI user, …). */
  error: string | null;
};

/**
 * Watches a whole PBX ("pbx") or one tenant's part of its PBX ("tenant"); null: nothing. A
 * change of `epoch` opens the view again (a tenant's view holds the devices it opened with).
 */
export function useLive(kind: "pbx" | "tenant", name: string | null, epoch = ""): LiveView {
  const [view, setView] = useState<LiveView>({ live: null, error: null });
  // biome-ignore lint/correctness/useExhaustiveDependencies: a new epoch opens the view again
  useEffect(() => {
    setView({ live: null, error: null });
    if (name === null) return;
    let gone = false;
    let id: number | null = null;
    const updates = new Channel<Live>();
    updates.onmessage = (live) => {
      if (!gone) setView({ live, error: null });
    };
    const opened =
      kind === "pbx" ? commands.pbxWatch(name, updates) : commands.tenantWatch(name, updates);
    call(opened)
      .then((v) => {
        id = v;
        // Unmounted while it was opening: close it now.
        if (gone) call(commands.liveUnwatch(v)).catch(() => {});
      })
      .catch((e: unknown) => {
        if (!gone) setView({ live: null, error: e instanceof Error ? e.message : String(e) });
      });
    return () => {
      gone = true;
      if (id !== null) call(commands.liveUnwatch(id)).catch(() => {});
    };
  }, [kind, name, epoch]);
  return view;
}

/** What a device's dot says. */
export type DeviceStatus = "registered" | "unreachable" | "offline" | "unknown";

/**
 * Registered: a contact that is not known unreachable (as the backend's `registered()`);
 * unreachable: contacts, none answering its qualify; offline: no contact; unknown: no live
 * state (not watched, or the connection is down: the last known is shown as such).
 */
export function deviceStatus(live: Live | null, endpoint: string): DeviceStatus {
  if (!live?.connected) return "unknown";
  const e = live.state.endpoints[endpoint];
  if (!e || e.contacts.length === 0) return "offline";
  return e.contacts.some((c) => c.state !== "unreachable") ? "registered" : "unreachable";
}

export const STATUS_COLOR: Record<DeviceStatus, string> = {
  registered: "var(--mantine-color-green-6)",
  unreachable: "var(--mantine-color-orange-6)",
  offline: "var(--mantine-color-gray-5)",
  unknown: "transparent",
};

/** One line per contact: where it registered from, what it is, how fast it answers. */
export function contactLines(e: Endpoint | undefined): string[] {
  if (!e) return [];
  return e.contacts.map((c) => {
    const parts = [c.uri, c.state.replace("_", " ")];
    if (c.source) parts.push(`from ${c.source}`);
    if (c.user_agent) parts.push(c.user_agent);
    if (c.rtt_us != null) parts.push(`${(c.rtt_us / 1000).toFixed(1)} ms`);
    if (c.expires_at != null)
      parts.push(`expires ${new Date(c.expires_at * 1000).toLocaleString()}`);
    return parts.join(" · ");
  });
}

/** "3 min", "2 h 5 min": how long ago a Unix-ms time was. */
export function since(ms: number, now: number = Date.now()): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}
