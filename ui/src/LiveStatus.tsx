import { Alert, Badge, Group, Paper, SimpleGrid, Stack, Table, Text, Tooltip } from "@mantine/core";
import { useEffect, useMemo, useState } from "react";
import { call } from "./api";
import { type ApplyRecord, type CallChannel, commands, type Endpoint, type Live } from "./bindings";
import {
  contactLines,
  type DeviceStatus,
  deviceStatus,
  STATUS_COLOR,
  since,
  useLive,
} from "./live";

const STATUS_TEXT: Record<DeviceStatus, string> = {
  registered: "registered",
  unreachable: "registered, not answering (unreachable)",
  offline: "not registered",
  unknown: "no live status",
};

/** A device's live status: a dot, the details on hover. */
export function DeviceDot({
  endpoint,
  live,
  why,
}: {
  endpoint: string;
  live: Live | null;
  /** Why there is no live status, when there is none. */
  why?: string | null;
}) {
  const status = deviceStatus(live, endpoint);
  const e = live?.state.endpoints[endpoint];
  const lines =
    status === "unknown"
      ? [why ?? (live ? `PBX not connected: ${live.last_error ?? "connecting"}` : "connecting…")]
      : !e
        ? ["not on the PBX (not applied yet?)"]
        : contactLines(e);
  return (
    <Tooltip
      multiline
      w={360}
      withArrow
      label={
        <Stack gap={2}>
          <Text size="xs" fw={600}>
            {endpoint}: {STATUS_TEXT[status]}
          </Text>
          {lines.map((l) => (
            <Text size="xs" key={l}>
              {l}
            </Text>
          ))}
        </Stack>
      }
    >
      <span
        data-testid="device-dot"
        data-endpoint={endpoint}
        data-status={status}
        role="img"
        aria-label={`${endpoint}: ${STATUS_TEXT[status]}`}
        style={{
          display: "inline-block",
          width: 10,
          height: 10,
          borderRadius: 5,
          marginRight: 4,
          background: STATUS_COLOR[status],
          border: "1px solid var(--mantine-color-gray-6)",
        }}
      />
    </Tooltip>
  );
}

/** A device's live details, for the user dialog. */
export function DeviceLiveDetail({ endpoint, live }: { endpoint: string; live: Live | null }) {
  const status = deviceStatus(live, endpoint);
  const e: Endpoint | undefined = live?.state.endpoints[endpoint];
  return (
    <Stack gap={0} data-testid="device-live" data-endpoint={endpoint}>
      <Group gap={4}>
        <DeviceDot endpoint={endpoint} live={live} />
        <Text size="sm">{STATUS_TEXT[status]}</Text>
        {e?.device_state && (
          <Text size="xs" c="dimmed">
            ({e.device_state.replaceAll("_", " ")})
          </Text>
        )}
      </Group>
      {contactLines(e).map((l) => (
        <Text size="xs" c="dimmed" key={l}>
          {l}
        </Text>
      ))}
    </Stack>
  );
}

/** Channels grouped into calls (by linkedid), oldest first. */
function callsOf(channels: CallChannel[]): CallChannel[][] {
  const by = new Map<string, CallChannel[]>();
  for (const c of channels) {
    const list = by.get(c.linkedid) ?? [];
    list.push(c);
    by.set(c.linkedid, list);
  }
  return [...by.values()].sort((a, b) => (a[0].since ?? 0) - (b[0].since ?? 0));
}

const TRUNK_PREFIX = "pbxdesk-trunk-";

function duration(seconds: number | null): string {
  if (seconds === null) return "?";
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return d > 0 ? `${d} d ${h} h` : `${h} h ${m} min`;
}

/** The PBX dashboard: health, trunks, registrations, calls and the last apply, live. */
export function LivePanel({ pbx }: { pbx: string }) {
  const { live, error } = useLive("pbx", pbx);
  const [last, setLast] = useState<ApplyRecord | null | undefined>(undefined);
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    call(commands.pbxApplyHistory(pbx, 1))
      .then((h) => setLast(h[0] ?? null))
      .catch(() => setLast(null));
  }, [pbx]);
  // Call durations move on by themselves.
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);
  const endpoints = useMemo(() => Object.entries(live?.state.endpoints ?? {}), [live]);
  const phones = endpoints.filter(([name]) => !name.startsWith(TRUNK_PREFIX));
  const registered = phones.filter(([name]) => deviceStatus(live, name) === "registered");
  const unreachable = phones.filter(([name]) => deviceStatus(live, name) === "unreachable");
  const calls = callsOf(Object.values(live?.state.channels ?? {}) as CallChannel[]);
  const registrations = Object.values(live?.state.registrations ?? {});
  const h = live?.state.health;
  const db = h?.realtime_db;

  return (
    <Stack data-testid="live-panel">
      {error && (
        <Alert color="orange" title="No live status" data-testid="live-error">
          {error}
        </Alert>
      )}
      {!error && (
        <Group gap="xs" data-testid="live-connection">
          <Badge color={live?.connected ? "green" : "orange"}>
            {live?.connected ? "connected" : "not connected"}
          </Badge>
          <Text size="sm" c="dimmed">
            {live?.connected
              ? `live over AMI · ${live.events} event(s) · read in full ${live.rereads} time(s)`
              : live?.last_error
                ? `${live.last_error}; trying again (the state shown is the last known)`
                : "connecting…"}
          </Text>
        </Group>
      )}
      <SimpleGrid cols={{ base: 1, md: 3 }}>
        <Paper withBorder p="sm" data-testid="live-health">
          <Text fw={600} mb={4}>
            Health
          </Text>
          <Text size="sm">Asterisk {h?.version ?? "?"}</Text>
          <Text size="sm">Up {duration(h?.uptime_s ?? null)}</Text>
          <Text size="sm">Last reload {h?.last_reload ?? "?"}</Text>
          <Text size="sm" c={db && db.active === 0 ? "red" : undefined}>
            Realtime database:{" "}
            {db
              ? db.active > 0
                ? `connected (${db.active}/${db.max})`
                : `NOT connected${db.last_fail ? ` (last failure ${db.last_fail})` : ""}`
              : "unknown"}
          </Text>
          <Text size="sm">Channels {h?.channels ?? "?"}</Text>
        </Paper>
        <Paper withBorder p="sm" data-testid="live-registrations">
          <Text fw={600} mb={4}>
            Phones
          </Text>
          <Text size="sm" data-testid="live-registered-count">
            {registered.length} of {phones.length} registered
          </Text>
          {unreachable.length > 0 && (
            <Text size="sm" c="orange">
              {unreachable.length} unreachable: {unreachable.map(([n]) => n).join(", ")}
            </Text>
          )}
          <Group gap={2} mt={4}>
            {phones.slice(0, 200).map(([name]) => (
              <DeviceDot key={name} endpoint={name} live={live} />
            ))}
          </Group>
        </Paper>
        <Paper withBorder p="sm" data-testid="live-last-apply">
          <Text fw={600} mb={4}>
            Last apply
          </Text>
          {last === undefined ? null : last === null ? (
            <Text size="sm" c="dimmed">
              never applied
            </Text>
          ) : (
            <>
              <Badge color={last.outcome === "applied" ? "green" : "red"}>{last.outcome}</Badge>
              <Text size="sm">
                {new Date(last.at ?? 0).toLocaleString()} by {last.actor}
              </Text>
              <Text size="xs" c="dimmed">
                {last.summary}
              </Text>
            </>
          )}
        </Paper>
      </SimpleGrid>
      <Paper withBorder p="sm" data-testid="live-trunks">
        <Text fw={600} mb={4}>
          Trunk registrations
        </Text>
        {registrations.length === 0 ? (
          <Text size="sm" c="dimmed">
            none
          </Text>
        ) : (
          <Table>
            <Table.Tbody>
              {registrations.map((r) => (
                <Table.Tr key={r.name}>
                  <Table.Td>{r.name.replace(TRUNK_PREFIX, "")}</Table.Td>
                  <Table.Td>
                    <Badge color={r.status === "Registered" ? "green" : "red"} variant="light">
                      {r.status}
                    </Badge>
                  </Table.Td>
                  <Table.Td>{r.server_uri}</Table.Td>
                  <Table.Td>for {since(r.since ?? now, now)}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        )}
      </Paper>
      <Paper withBorder p="sm" data-testid="live-calls">
        <Text fw={600} mb={4}>
          Active calls ({calls.length})
        </Text>
        {calls.length === 0 ? (
          <Text size="sm" c="dimmed">
            none
          </Text>
        ) : (
          <Table>
            <Table.Tbody>
              {calls.map((legs) => {
                const trunk = legs.find((c) => c.endpoint?.startsWith(TRUNK_PREFIX));
                return (
                  <Table.Tr key={legs[0].linkedid} data-testid="live-call">
                    <Table.Td>
                      {legs[0].caller || "?"} → {legs[0].connected || legs[0].exten || "?"}
                    </Table.Td>
                    <Table.Td>{legs.map((c) => c.endpoint ?? c.channel).join(" ↔ ")}</Table.Td>
                    <Table.Td>
                      {trunk ? `via ${trunk.endpoint?.replace(TRUNK_PREFIX, "")}` : "internal"}
                    </Table.Td>
                    <Table.Td>{legs.map((c) => c.state).join(", ")}</Table.Td>
                    <Table.Td>{since(legs[0].since ?? now, now)}</Table.Td>
                  </Table.Tr>
                );
              })}
            </Table.Tbody>
          </Table>
        )}
      </Paper>
    </Stack>
  );
}
