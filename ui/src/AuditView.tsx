// The audit log on screen: who did what, when and from where, newest first, a page at a time
// (the workspace pages by id, so the 20th page costs what the first does). Each entry opens to
// the fields it changed, before and after; a secret's field says only that it changed.
import {
  Alert,
  Badge,
  Button,
  Group,
  Loader,
  Select,
  Stack,
  Table,
  Text,
  TextInput,
  Title,
} from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { Fragment, useCallback, useEffect, useState } from "react";
import { call } from "./api";
import { type AuditEntryView, type AuditFilter, commands } from "./bindings";

const PAGE = 50;

const KINDS = [
  { value: "", label: "Everything" },
  { value: "user", label: "Users" },
  { value: "device", label: "Devices" },
  { value: "did", label: "Numbers" },
  { value: "tenant", label: "Tenants and imports" },
  { value: "pbx", label: "PBXs and applies" },
  { value: "trunk", label: "Trunks" },
  { value: "policy", label: "Outbound policies" },
  { value: "operator", label: "Operators" },
  { value: "api_token", label: "API tokens" },
];

/** A date input's "YYYY-MM-DD" as the Unix milliseconds of that local midnight. */
function dayStart(day: string): number | null {
  if (!day) return null;
  const t = new Date(`${day}T00:00:00`).getTime();
  return Number.isNaN(t) ? null : t;
}

function when(ms: number): string {
  return new Date(ms).toLocaleString();
}

interface Props {
  /** One tenant's entries; every tenant the operator may see when absent. */
  tenant?: string;
}

export function AuditView({ tenant }: Props) {
  const [actor, setActor] = useState("");
  const [kind, setKind] = useState("");
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [entries, setEntries] = useState<AuditEntryView[] | null>(null);
  const [next, setNext] = useState<number | null>(null);
  const [open, setOpen] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);

  const filter = useCallback(
    (before: number | null): AuditFilter => {
      const toDay = dayStart(to);
      return {
        tenant: tenant ?? null,
        actor: actor.trim() || null,
        action: null,
        entity_type: kind || null,
        from: dayStart(from),
        // "To" is the whole of that day.
        to: toDay === null ? null : toDay + 86_400_000,
        before,
        limit: PAGE,
      };
    },
    [tenant, actor, kind, from, to],
  );

  const load = useCallback(
    async (before: number | null) => {
      setLoading(true);
      try {
        const page = await call(commands.auditPage(filter(before)));
        setEntries((old) => (before === null ? page.entries : [...(old ?? []), ...page.entries]));
        setNext(page.next_before);
        setError(null);
      } catch (e) {
        setError(e instanceof Error ? e.message : String(e));
      } finally {
        setLoading(false);
      }
    },
    [filter],
  );

  useEffect(() => {
    setOpen(null);
    load(null);
  }, [load]);

  async function exportCsv() {
    try {
      const f = await call(commands.auditExportToDownloads(filter(null)));
      notifications.show({ message: `${f.rows} entries exported to ${f.path}` });
    } catch (e) {
      notifications.show({ color: "red", message: e instanceof Error ? e.message : String(e) });
    }
  }

  return (
    <Stack data-testid="audit" style={{ flex: 1, minHeight: 0 }}>
      {!tenant && <Title order={2}>Audit log</Title>}
      <Group align="end" wrap="wrap">
        <TextInput
          label="Who"
          placeholder="an operator, token:NAME, user:…"
          value={actor}
          onChange={(e) => setActor(e.currentTarget.value)}
          data-testid="audit-actor"
        />
        <Select
          label="What"
          data={KINDS}
          value={kind}
          onChange={(v) => setKind(v ?? "")}
          allowDeselect={false}
          data-testid="audit-kind"
        />
        <TextInput
          label="From"
          type="date"
          value={from}
          onChange={(e) => setFrom(e.currentTarget.value)}
        />
        <TextInput
          label="To"
          type="date"
          value={to}
          onChange={(e) => setTo(e.currentTarget.value)}
        />
        <Button variant="default" onClick={exportCsv} data-testid="audit-export">
          Export CSV
        </Button>
      </Group>
      {error && <Alert color="red">{error}</Alert>}
      {entries === null && !error && <Loader />}
      {entries && entries.length === 0 && (
        <Text c="dimmed" data-testid="audit-empty">
          No entries match.
        </Text>
      )}
      {entries && entries.length > 0 && (
        <div style={{ flex: 1, minHeight: 0, overflow: "auto" }}>
          <Table highlightOnHover data-testid="audit-table">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>When</Table.Th>
                <Table.Th>Who</Table.Th>
                <Table.Th>From</Table.Th>
                <Table.Th>What</Table.Th>
                <Table.Th>Which</Table.Th>
                {!tenant && <Table.Th>Tenant</Table.Th>}
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {entries.map((e) => (
                <Fragment key={e.id}>
                  <Table.Tr
                    style={{ cursor: "pointer" }}
                    onClick={() => setOpen(open === e.id ? null : e.id)}
                    data-testid={`audit-row-${e.id}`}
                  >
                    <Table.Td>{when(e.at ?? 0)}</Table.Td>
                    <Table.Td>{e.actor}</Table.Td>
                    <Table.Td>{e.via ?? ""}</Table.Td>
                    <Table.Td>
                      <Badge variant="light">{e.action}</Badge>
                    </Table.Td>
                    <Table.Td>{e.entity_id}</Table.Td>
                    {!tenant && <Table.Td>{e.tenant ?? ""}</Table.Td>}
                  </Table.Tr>
                  {open === e.id && (
                    <Table.Tr>
                      <Table.Td colSpan={tenant ? 5 : 6}>
                        <Changes entry={e} />
                      </Table.Td>
                    </Table.Tr>
                  )}
                </Fragment>
              ))}
            </Table.Tbody>
          </Table>
          {next !== null && (
            <Group justify="center" my="sm">
              <Button
                variant="default"
                loading={loading}
                onClick={() => load(next)}
                data-testid="audit-more"
              >
                Show older entries
              </Button>
            </Group>
          )}
        </div>
      )}
    </Stack>
  );
}

function Changes({ entry }: { entry: AuditEntryView }) {
  if (entry.changes.length === 0) {
    return (
      <Text size="sm" c="dimmed">
        No field changed.
      </Text>
    );
  }
  return (
    <Table fz="sm" withTableBorder data-testid="audit-changes">
      <Table.Thead>
        <Table.Tr>
          <Table.Th>Field</Table.Th>
          <Table.Th>Before</Table.Th>
          <Table.Th>After</Table.Th>
        </Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {entry.changes.map((c) => (
          <Table.Tr key={c.field}>
            <Table.Td>{c.field.replaceAll("_", " ")}</Table.Td>
            <Table.Td style={{ wordBreak: "break-word" }}>{c.before ?? "—"}</Table.Td>
            <Table.Td style={{ wordBreak: "break-word" }}>{c.after ?? "—"}</Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}
