// The offline preview of a PBX (what an apply would change, side by side, with the findings)
// and the picture of a number's call path. Both come from the same render as the CLI's
// `pbxdesk diff` and `pbxdesk trace`.
import {
  Alert,
  Badge,
  Button,
  Checkbox,
  Group,
  Loader,
  Paper,
  Stack,
  Table,
  Text,
  TextInput,
  Title,
} from "@mantine/core";
import { Diff2HtmlUI } from "diff2html/lib-esm/ui/js/diff2html-ui-base.js";
import "diff2html/bundles/css/diff2html.min.css";
import hljs from "highlight.js/lib/core";
import ini from "highlight.js/lib/languages/ini";
import "highlight.js/styles/github.css";
import { useCallback, useEffect, useRef, useState } from "react";
import { call, type FieldErrors, fieldErrors } from "./api";
import {
  type ApplyReport,
  commands,
  type Finding,
  type Hop,
  type HopKind,
  type PbxDiff,
  type Trace,
} from "./bindings";

// Asterisk's config files are INI-like: sections, key = value, ';' comments.
hljs.registerLanguage("ini", ini);

function DiffView({ unified }: { unified: string }) {
  const target = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!target.current) return;
    const ui = new Diff2HtmlUI(
      target.current,
      unified,
      {
        outputFormat: "side-by-side",
        drawFileList: true,
        matching: "lines",
        highlight: true,
        synchronisedScroll: true,
        highlightLanguages: new Map([["conf", "ini"]]),
      },
      hljs,
    );
    ui.draw();
    ui.highlightCode();
  }, [unified]);
  return <div ref={target} data-testid="diff-view" />;
}

export function Findings({ findings }: { findings: Finding[] }) {
  if (findings.length === 0) {
    return (
      <div data-testid="findings">
        <Alert color="green">No findings: this render may be applied.</Alert>
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

/** Takes the workspace to the PBX and shows each step's outcome (or why it was refused). */
function ApplyBox({ pbx, blocked, onDone }: { pbx: string; blocked: boolean; onDone: () => void }) {
  const [addIncludes, setAddIncludes] = useState(false);
  const [overwrite, setOverwrite] = useState(false);
  const [busy, setBusy] = useState(false);
  const [report, setReport] = useState<ApplyReport | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function apply() {
    setBusy(true);
    setError(null);
    setReport(null);
    try {
      setReport(
        await call(
          commands.pbxApply(pbx, {
            dry_run: false,
            overwrite_drift: overwrite,
            add_includes: addIncludes,
          }),
        ),
      );
      onDone();
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Paper withBorder p="sm" data-testid="apply-box">
      <Group justify="space-between">
        <Group>
          <Checkbox
            label="Add pbxdesk's include lines to the core files"
            checked={addIncludes}
            onChange={(e) => setAddIncludes(e.currentTarget.checked)}
          />
          <Checkbox
            label="Replace files edited by hand on the PBX"
            checked={overwrite}
            onChange={(e) => setOverwrite(e.currentTarget.checked)}
          />
        </Group>
        <Button onClick={apply} loading={busy} disabled={blocked} data-testid="apply-run">
          Apply to PBX
        </Button>
      </Group>
      {blocked && (
        <Text size="sm" c="dimmed" mt="xs">
          Fix the errors above first: they block an apply.
        </Text>
      )}
      {error && (
        <Alert color="red" mt="sm" data-testid="apply-error">
          {error}
        </Alert>
      )}
      {report && (
        <Stack gap="xs" mt="sm" data-testid="apply-report">
          <Group>
            <Badge color={report.outcome === "rolled_back" ? "red" : "green"}>
              {report.outcome}
            </Badge>
            <Text size="sm">{report.summary}</Text>
          </Group>
          {report.failed && (
            <Alert color="red">
              Failed at “{report.failed}”: the files were restored and the old dialplan reloaded.
            </Alert>
          )}
          <Table>
            <Table.Tbody>
              {report.steps.map((s) => (
                <Table.Tr key={s.step}>
                  <Table.Td w={60}>
                    <Badge color={s.ok ? "green" : "red"}>{s.ok ? "ok" : "fail"}</Badge>
                  </Table.Td>
                  <Table.Td>{s.step}</Table.Td>
                  <Table.Td w={80}>{s.ms} ms</Table.Td>
                  <Table.Td>{s.detail}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Stack>
      )}
    </Paper>
  );
}

export function PreviewPanel({ pbx }: { pbx: string }) {
  const [diff, setDiff] = useState<PbxDiff | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
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
          <ApplyBox
            pbx={pbx}
            blocked={diff.findings.some((f) => f.severity === "error")}
            onDone={load}
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
            <DiffView unified={d.files.map((f) => f.unified).join("")} />
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

export function CallPathPanel({ pbx }: { pbx: string }) {
  const [number, setNumber] = useState("");
  const [from, setFrom] = useState("");
  const [trace, setTrace] = useState<Trace | null>(null);
  const [errors, setErrors] = useState<FieldErrors>({});

  async function run() {
    try {
      setTrace(await call(commands.pbxTrace(pbx, number, from.trim() || null)));
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
        <Button mt={24} onClick={run} data-testid="trace-run">
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
