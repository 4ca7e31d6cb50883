// The offline preview of a PBX (what an apply would change, side by side, with the findings)
// and the picture of a number's call path. Both come from the same render as the CLI's
// `pbxdesk diff` and `pbxdesk trace`.
import {
  Alert,
  Badge,
  Button,
  Group,
  Loader,
  Paper,
  Stack,
  Text,
  TextInput,
  Title,
} from "@mantine/core";
import { useCallback, useEffect, useState } from "react";
import { ApplyWizard } from "./ApplyWizard";
import { call, type FieldErrors, fieldErrors } from "./api";
import {
  commands,
  type Finding,
  type Hop,
  type HopKind,
  type PbxDiff,
  type Trace,
} from "./bindings";
import { DiffView } from "./DiffView";

export function Findings({ findings }: { findings: Finding[] }) {
  if (findings.length === 0) {
    return (
      <div data-testid="findings">
        <Alert color="green">No findings in this render.</Alert>
      </div>
    );
  }
  const errors = findings.filter((f) => f.severity === "error").length;
  return (
    <Paper withBorder p="sm" data-testid="findings">
      <Text fw={600} mb="xs">
        {errors} error(s) (they block an apply), {findings.length - errors} warning(s)
      </Text>
      <Stack gap={6}>
        {findings.map((f) => (
          <div key={`${f.code}-${f.entity}-${f.message}`}>
            <Group gap="xs" wrap="nowrap" align="flex-start">
              <Badge color={f.severity === "error" ? "red" : "yellow"} w={80}>
                {f.severity}
              </Badge>
              <Text size="sm">
                <b>{f.entity}</b>: {f.message}
              </Text>
            </Group>
            <Text size="sm" c="dimmed" ml={88}>
              Fix: {f.fix}
            </Text>
          </div>
        ))}
      </Stack>
    </Paper>
  );
}

export function PreviewPanel({ pbx }: { pbx: string }) {
  const [diff, setDiff] = useState<PbxDiff | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [applying, setApplying] = useState(false);
  const load = useCallback(async () => {
    setBusy(true);
    try {
      setDiff(await call(commands.pbxDiff(pbx)));
      setError(null);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  }, [pbx]);
  useEffect(() => {
    load();
  }, [load]);

  const d = diff?.diff;
  const blocked = diff?.findings.some((f) => f.severity === "error") ?? false;
  const rows = d ? d.rows_added.length + d.rows_changed.length + d.rows_removed.length : 0;
  return (
    <Stack>
      <Group justify="space-between">
        <Text size="sm" c="dimmed">
          {diff?.last_applied_at
            ? `Compared with the apply of ${new Date(diff.last_applied_at).toISOString()} by ${diff.last_applied_by}`
            : "Nothing applied yet: everything is new."}
        </Text>
        <Button size="xs" variant="default" onClick={load} loading={busy}>
          Render again
        </Button>
      </Group>
      {error && <Alert color="red">{error}</Alert>}
      {!diff && busy && <Loader />}
      {diff && d && (
        <>
          <Group data-testid="diff-summary">
            <Badge variant="light">{d.files.length} file(s) change</Badge>
            <Badge variant="light">{d.unchanged_files} unchanged</Badge>
            <Badge variant="light">{rows} realtime row(s) change</Badge>
            {d.secrets_changed.length > 0 && (
              <Badge color="grape" variant="light" title={d.secrets_changed.join("\n")}>
                {d.secrets_changed.length} secret(s) changed (not shown)
              </Badge>
            )}
          </Group>
          <Findings findings={diff.findings} />
          <Group justify="flex-end">
            <Button onClick={() => setApplying(true)} data-testid="apply-open">
              Apply…
            </Button>
          </Group>
          <ApplyWizard
            pbx={pbx}
            source="workspace"
            opened={applying}
            blocked={blocked}
            onClose={() => setApplying(false)}
            onApplied={load}
            review={
              <>
                <Findings findings={diff.findings} />
                <Text size="sm">
                  {d.files.length} file(s) and {rows} realtime row(s) change
                  {d.secrets_changed.length > 0
                    ? `; ${d.secrets_changed.length} secret(s) changed (not shown)`
                    : ""}
                  .
                </Text>
                {d.files.length > 0 && (
                  // The diff itself is on the Preview tab: the dialog names the files only.
                  <Text
                    size="sm"
                    ff="monospace"
                    style={{ whiteSpace: "pre-line" }}
                    data-testid="apply-files"
                  >
                    {d.files
                      .map(
                        (f) =>
                          `${f.change === "added" ? "+" : f.change === "removed" ? "−" : "~"} ${f.path}`,
                      )
                      .join("\n")}
                  </Text>
                )}
              </>
            }
          />
          {rows > 0 && (
            <Paper withBorder p="sm">
              <Text fw={600} size="sm">
                Realtime rows (ps_endpoints, ps_auths, ps_aors)
              </Text>
              <Text size="sm" ff="monospace">
                {d.rows_added.map((id) => `+ ${id}`).join("  ")}
                {d.rows_changed.map((r) => ` ~ ${r.id} (${r.columns.join(", ")})`).join("  ")}
                {d.rows_removed.map((id) => ` - ${id}`).join("  ")}
              </Text>
            </Paper>
          )}
          {d.files.length === 0 ? (
            <Alert color="gray">No file changes.</Alert>
          ) : (
            <DiffView files={d.files} />
          )}
        </>
      )}
    </Stack>
  );
}

const look: Record<HopKind, { color: string; label: string }> = {
  did: { color: "blue", label: "number" },
  caller: { color: "blue", label: "caller" },
  user: { color: "teal", label: "user" },
  devices: { color: "teal", label: "rings" },
  no_answer: { color: "gray", label: "no answer" },
  ring_group: { color: "grape", label: "ring group" },
  voicemail: { color: "violet", label: "voicemail" },
  feature: { color: "cyan", label: "feature code" },
  emergency: { color: "red", label: "emergency" },
  rule: { color: "indigo", label: "outbound rule" },
  trunks: { color: "indigo", label: "trunks" },
  denied: { color: "red", label: "denied" },
  not_in_service: { color: "orange", label: "not in service" },
};

function HopCard({ hop }: { hop: Hop }) {
  const l = look[hop.kind];
  return (
    <Paper
      withBorder
      p="sm"
      w={210}
      data-testid={`hop-${hop.kind}`}
      style={{ borderTop: `4px solid var(--mantine-color-${l.color}-6)` }}
    >
      <Badge color={l.color} variant="light" size="sm" mb={4}>
        {l.label}
      </Badge>
      <Text fw={600} size="sm">
        {hop.title}
      </Text>
      {hop.detail && (
        <Text size="xs" c="dimmed" mt={4}>
          {hop.detail}
        </Text>
      )}
    </Paper>
  );
}

export function CallPathPanel({ pbx, initial = "" }: { pbx: string; initial?: string }) {
  const [number, setNumber] = useState(initial);
  const [from, setFrom] = useState("");
  const [trace, setTrace] = useState<Trace | null>(null);
  const [errors, setErrors] = useState<FieldErrors>({});

  // Opened for a number (a click on it in the Numbers list): its path at once.
  // biome-ignore lint/correctness/useExhaustiveDependencies: only when opened for a number
  useEffect(() => {
    if (initial) run(initial);
  }, [initial]);

  async function run(n: string = number) {
    try {
      setTrace(await call(commands.pbxTrace(pbx, n, from.trim() || null)));
      setErrors({});
    } catch (e) {
      setTrace(null);
      setErrors(fieldErrors(e));
    }
  }

  return (
    <Stack>
      <Group align="flex-start">
        <TextInput
          label="Number"
          placeholder="+41445551000, or what a phone dials"
          value={number}
          onChange={(e) => setNumber(e.currentTarget.value)}
          onKeyDown={(e) => e.key === "Enter" && run()}
          error={errors.number}
          data-testid="trace-number"
        />
        <TextInput
          label="Dialled by (optional)"
          placeholder="extension or tenant/extension"
          value={from}
          onChange={(e) => setFrom(e.currentTarget.value)}
          error={errors.from}
          data-testid="trace-from"
        />
        <Button mt={24} onClick={() => run()} data-testid="trace-run">
          Where does it go?
        </Button>
      </Group>
      {errors._form && <Alert color="red">{errors._form}</Alert>}
      {trace && (
        <Stack gap="xs">
          <Title order={4}>Call to {trace.number}</Title>
          <Group gap={4} align="stretch" data-testid="call-path">
            {trace.path.map((hop, i) => (
              // A path is an ordered list: a hop's position is its identity.
              // biome-ignore lint/suspicious/noArrayIndexKey: position is the hop's identity
              <Group key={`${i}-${hop.kind}`} gap={4} wrap="nowrap" align="center">
                {i > 0 && (
                  <Text size="xl" c="dimmed">
                    →
                  </Text>
                )}
                <HopCard hop={hop} />
              </Group>
            ))}
          </Group>
        </Stack>
      )}
    </Stack>
  );
}
