// The Apply wizard (review, then each step live as the PBX reports it, then the result with
// what was verified) and the history of applies of a PBX, from which the last apply can be
// rolled back. Both call the same service as `pbxdesk apply` and `pbxdesk history`.
import {
  Alert,
  Badge,
  Button,
  Checkbox,
  Code,
  Group,
  Loader,
  Modal,
  NumberInput,
  Paper,
  Stack,
  Stepper,
  Table,
  Text,
  ThemeIcon,
} from "@mantine/core";
import { Channel } from "@tauri-apps/api/core";
import { useCallback, useEffect, useState } from "react";
import { ApiFailure, call } from "./api";
import {
  type ApplyOutcome,
  type ApplyRecord,
  type ApplyReport,
  type ApplySource,
  type ApplyStep,
  commands,
  type Refusal,
  type StepKind,
} from "./bindings";
import { UnifiedDiffView } from "./DiffView";

/** A step's mark, drawn by the app: Mantine's own enters with a transition that was seen never
 * to end in the app's web view (WebKitGTK under Xvfb), leaving completed steps as empty discs
 * and the failed apply's ✕ not drawn at all. */
function StepMark({ n, active, failed }: { n: number; active: number; failed: boolean }) {
  const state = failed ? "failed" : n < active ? "done" : n === active ? "now" : "later";
  const text = state === "failed" ? "✕" : state === "done" ? "✓" : String(n + 1);
  const color = state === "failed" ? "red" : state === "later" ? "gray" : "blue";
  const filled = state === "done" || state === "failed";
  return (
    <ThemeIcon
      radius="xl"
      size="md"
      color={color}
      variant={filled ? "filled" : "light"}
      data-testid="step-mark"
      data-state={state}
    >
      {text}
    </ThemeIcon>
  );
}

function stepLabel(n: number, active: number, failed: boolean, text: string) {
  return (
    <Group gap={6} wrap="nowrap">
      <StepMark n={n} active={active} failed={failed} />
      {text}
    </Group>
  );
}

/** A history row's outcome is a report's, or one only the history has. */
type RecordOutcome = ApplyOutcome | "rolled_back_by_pbx" | "refused" | "failed";

const outcomeColor: Record<RecordOutcome, string> = {
  applied: "green",
  nothing_to_do: "gray",
  dry_run: "gray",
  rolled_back: "red",
  stopped: "orange",
  rolled_back_by_pbx: "red",
  refused: "yellow",
  failed: "orange",
};

/** A message whose `quoted` parts are commands or names: drawn as code, not as backticks. */
export function WithCode({ text }: { text: string }) {
  const parts = text.split("`");
  return (
    <>
      {parts.map((p, i) =>
        i % 2 === 1 ? (
          // biome-ignore lint/suspicious/noArrayIndexKey: the parts of one fixed string
          <Code key={i}>{p}</Code>
        ) : (
          p
        ),
      )}
    </>
  );
}

function StepRows({ steps }: { steps: ApplyStep[] }) {
  return (
    <Table>
      <Table.Tbody>
        {steps.map((s, i) => (
          // A step name can repeat (an earlier apply reported twice), so the index is part of it.
          // biome-ignore lint/suspicious/noArrayIndexKey: steps are append-only
          <Table.Tr key={`${i}-${s.step}`}>
            <Table.Td w={72}>
              <Badge color={s.ok ? "green" : "red"} miw={52}>
                {s.ok ? "ok" : "fail"}
              </Badge>
            </Table.Td>
            <Table.Td w={200}>{s.step}</Table.Td>
            <Table.Td w={80}>{s.ms} ms</Table.Td>
            <Table.Td>
              <WithCode text={s.detail} />
            </Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

/** The steps that check what Asterisk loaded. */
const verifications: ReadonlySet<StepKind> = new Set<StepKind>([
  "verify_dialplan",
  "verify_endpoints",
  "verify_voicemail",
  "verify_trunks",
]);

/** The steps that reach AMI or the realtime database. */
const connections: ReadonlySet<StepKind> = new Set<StepKind>(["connect_ami", "connect_database"]);

function explain(r: ApplyReport): string | null {
  const at = r.steps.find((s) => s.kind === r.failed)?.step ?? r.failed;
  switch (r.outcome) {
    case "rolled_back":
      return `Failed at “${at}”: the PBX was restored to what it ran before (see the steps).`;
    case "stopped":
      return r.failed && connections.has(r.failed)
        ? `The PBX could not be reached at “${at}”; nothing on it changed.`
        : `Stopped at “${at}” before anything on the PBX changed.`;
    default:
      return null;
  }
}

/** What the technician can do about a refusal, in the app's terms. */
function advice(r: Refusal | null, pbx: string): string | null {
  switch (r?.kind) {
    case "untrusted":
      return `Check the PBX's host key with its administrator, then trust it on the PBX screen (or: pbxdesk pbx trust ${pbx}).`;
    case "locked":
    case "team_locked":
      return "Try again when the other apply is done.";
    case "render_errors":
      return "Fix the errors in the preview's findings first.";
    case "no_dialplan":
      return "Check the PBX on its screen: the config folder may not be Asterisk's.";
    default:
      return null;
  }
}

/** A refusal's remedy, as a button that goes back to the review with the option set. */
function remedy(r: Refusal | null): { label: string; option: "overwrite" | "includes" } | null {
  switch (r?.kind) {
    case "drift":
      return { label: "Review again, replacing the hand-edited files", option: "overwrite" };
    case "missing_include":
      return { label: "Review again, adding pbxdesk's include lines", option: "includes" };
    default:
      return null;
  }
}

/**
 * Review → Apply (live steps) → Result. `source` "previous_apply" rolls the last apply back
 * through the same steps.
 */
export function ApplyWizard({
  pbx,
  source,
  opened,
  blocked,
  onClose,
  onApplied,
  review,
}: {
  pbx: string;
  source: ApplySource;
  opened: boolean;
  blocked: boolean;
  onClose: () => void;
  onApplied: () => void;
  review?: React.ReactNode;
}) {
  const [active, setActive] = useState(0);
  const [addIncludes, setAddIncludes] = useState(false);
  const [overwrite, setOverwrite] = useState(false);
  const [seconds, setSeconds] = useState<number>(300);
  const [live, setLive] = useState<ApplyStep[]>([]);
  const [report, setReport] = useState<ApplyReport | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [refusal, setRefusal] = useState<Refusal | null>(null);
  const [what, setWhat] = useState<ApplySource>(source);

  useEffect(() => {
    if (opened) {
      setActive(0);
      setLive([]);
      setReport(null);
      setError(null);
      setRefusal(null);
      setWhat(source);
    }
  }, [opened, source]);

  async function run(from: ApplySource) {
    setWhat(from);
    setActive(1);
    setLive([]);
    setReport(null);
    setError(null);
    setRefusal(null);
    const progress = new Channel<ApplyStep>();
    progress.onmessage = (step) => setLive((s) => [...s, step]);
    try {
      const r = await call(
        commands.pbxApply(
          pbx,
          {
            dry_run: false,
            overwrite_drift: overwrite,
            add_includes: addIncludes,
            confirm_seconds: seconds,
          },
          from,
          progress,
        ),
      );
      setReport(r);
      onApplied();
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
      setRefusal(e instanceof ApiFailure ? e.refusal : null);
    } finally {
      setActive(2);
    }
  }

  const verified = report?.steps.filter((s) => verifications.has(s.kind) && s.ok) ?? [];
  const failedRun =
    active === 2 &&
    (error !== null || (report !== null && !["applied", "nothing_to_do"].includes(report.outcome)));
  const fix = remedy(refusal);
  const said = advice(refusal, pbx);
  return (
    <Modal
      opened={opened}
      onClose={onClose}
      size="90%"
      title={what === "previous_apply" ? `Roll back the last apply to ${pbx}` : `Apply to ${pbx}`}
      closeOnClickOutside={active !== 1}
      closeOnEscape={active !== 1}
      withCloseButton={active !== 1}
    >
      <Stepper active={active} size="sm" allowNextStepsSelect={false}>
        <Stepper.Step
          withIcon={false}
          label={stepLabel(0, active, false, "Review")}
          description="findings, changes, consent"
        >
          <Stack data-testid="apply-box">
            {what === "previous_apply" ? (
              <Alert color="yellow">
                The PBX goes back to what it ran before the last apply, through the same guarded
                steps. The workspace keeps its changes: the preview shows them again afterwards.
              </Alert>
            ) : (
              review
            )}
            <Group>
              <Checkbox
                label="Add pbxdesk's include lines to the core files"
                data-testid="apply-add-includes"
                checked={addIncludes}
                onChange={(e) => setAddIncludes(e.currentTarget.checked)}
              />
              <Checkbox
                label="Replace files edited by hand on the PBX"
                checked={overwrite}
                onChange={(e) => setOverwrite(e.currentTarget.checked)}
              />
              <NumberInput
                label="The PBX rolls back by itself unless confirmed within (s)"
                min={2}
                max={600}
                w={330}
                value={seconds}
                onChange={(v) => setSeconds(typeof v === "number" ? v : 300)}
              />
            </Group>
            {blocked && what === "workspace" && (
              <Text size="sm" c="red">
                Fix the errors in the findings first: they block an apply.
              </Text>
            )}
            <Group justify="flex-end">
              <Button
                onClick={() => run(what)}
                disabled={blocked && what === "workspace"}
                color={what === "previous_apply" ? "orange" : undefined}
                data-testid="apply-run"
              >
                {what === "previous_apply" ? "Roll back" : "Apply to PBX"}
              </Button>
            </Group>
          </Stack>
        </Stepper.Step>
        <Stepper.Step
          withIcon={false}
          // A failed or refused apply is not a completed step.
          label={stepLabel(1, active, failedRun, "Apply")}
          description="lock, back up, upload, reload, verify, confirm"
          color={failedRun ? "red" : undefined}
          data-testid="apply-step-run"
          data-failed={failedRun ? "true" : "false"}
        >
          <Stack data-testid="apply-progress">
            <StepRows steps={live} />
            <Group>
              <Loader size="sm" />
              <Text size="sm" c="dimmed">
                Working on the PBX; the phones stay up. Each step appears as it ends.
              </Text>
            </Group>
          </Stack>
        </Stepper.Step>
        <Stepper.Step
          withIcon={false}
          label={stepLabel(2, active, false, "Result")}
          description="what Asterisk reports"
        >
          <Stack>
            {error && (
              <Alert color="red" data-testid="apply-error">
                {error}
                {refusal && (
                  <Text size="sm" mt="xs" fw={500}>
                    Nothing on the PBX was changed.
                  </Text>
                )}
                {said && (
                  <Text size="sm" mt="xs" data-testid="apply-advice">
                    {said}
                  </Text>
                )}
                {fix && (
                  <Group mt="xs">
                    <Button
                      size="xs"
                      color="red"
                      variant="light"
                      data-testid="apply-remedy"
                      onClick={() => {
                        if (fix.option === "overwrite") setOverwrite(true);
                        else setAddIncludes(true);
                        setActive(0);
                      }}
                    >
                      {fix.label}
                    </Button>
                  </Group>
                )}
              </Alert>
            )}
            {report && (
              <Stack gap="xs" data-testid="apply-report">
                <Group>
                  <Badge color={outcomeColor[report.outcome]}>{report.outcome}</Badge>
                  <Text size="sm">{report.summary}</Text>
                </Group>
                {explain(report) && <Alert color="red">{explain(report)}</Alert>}
                {verified.length > 0 && (
                  <Alert color="green" data-testid="apply-verified">
                    Verified from what Asterisk reports: {verified.map((v) => v.detail).join("; ")}
                  </Alert>
                )}
                <StepRows steps={report.steps} />
                {report.outcome === "applied" && (
                  <Group justify="flex-end">
                    <Button
                      variant="light"
                      color="orange"
                      onClick={() => run("previous_apply")}
                      data-testid="apply-rollback"
                    >
                      Roll this apply back
                    </Button>
                  </Group>
                )}
              </Stack>
            )}
          </Stack>
        </Stepper.Step>
      </Stepper>
    </Modal>
  );
}

/** The applies to a PBX, newest first; each opens to its steps and diff. */
export function HistoryPanel({ pbx }: { pbx: string }) {
  const [records, setRecords] = useState<ApplyRecord[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [open, setOpen] = useState<number | null>(null);
  const [rollback, setRollback] = useState(false);
  const load = useCallback(async () => {
    try {
      setRecords(await call(commands.pbxApplyHistory(pbx, 50)));
      setError(null);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  }, [pbx]);
  useEffect(() => {
    load();
  }, [load]);

  const shown = records?.find((r) => r.id === open);
  const canRollBack = records?.some((r) => r.outcome === "applied") ?? false;
  return (
    <Stack data-testid="history">
      <Group justify="space-between">
        <Text size="sm" c="dimmed">
          Every apply to {pbx}, with its steps and changes (also `pbxdesk history --pbx {pbx}`).
        </Text>
        <Button
          size="xs"
          color="orange"
          variant="light"
          disabled={!canRollBack}
          onClick={() => setRollback(true)}
          data-testid="history-rollback"
        >
          Roll back the last apply
        </Button>
      </Group>
      {error && <Alert color="red">{error}</Alert>}
      {!records && !error && <Loader />}
      {records && records.length === 0 && <Alert color="gray">Nothing applied yet.</Alert>}
      {records && records.length > 0 && (
        <Table highlightOnHover>
          <Table.Thead>
            <Table.Tr>
              <Table.Th>When (UTC)</Table.Th>
              <Table.Th>By</Table.Th>
              <Table.Th>Outcome</Table.Th>
              <Table.Th>Summary</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {records.map((r) => (
              <Table.Tr
                key={r.id}
                onClick={() => setOpen(open === r.id ? null : r.id)}
                style={{ cursor: "pointer" }}
                data-testid="history-row"
              >
                <Table.Td>
                  {new Date(r.at ?? 0).toISOString().replace("T", " ").slice(0, 19)}
                </Table.Td>
                <Table.Td>{r.actor}</Table.Td>
                <Table.Td>
                  <Badge color={outcomeColor[r.outcome as RecordOutcome] ?? "gray"}>
                    {r.outcome}
                  </Badge>
                </Table.Td>
                <Table.Td>
                  <WithCode text={r.summary} />
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      {shown && (
        <Paper withBorder p="sm" data-testid="history-detail">
          {shown.failed && (
            <Text size="sm" c="red">
              Failed at “{shown.failed}”
            </Text>
          )}
          {(shown.outcome === "refused" || shown.outcome === "failed") && (
            <Text size="sm" data-testid="history-unchanged">
              <WithCode text={shown.summary} /> Nothing on the PBX was changed.
            </Text>
          )}
          <StepRows steps={shown.steps} />
          {shown.log ? (
            <Text size="sm" ff="monospace" style={{ whiteSpace: "pre-wrap" }}>
              {shown.log}
            </Text>
          ) : shown.diff ? (
            <UnifiedDiffView unified={shown.diff} />
          ) : (
            <Text size="sm" c="dimmed">
              No file changes.
            </Text>
          )}
        </Paper>
      )}
      <ApplyWizard
        pbx={pbx}
        source="previous_apply"
        opened={rollback}
        blocked={false}
        onClose={() => setRollback(false)}
        onApplied={load}
      />
    </Stack>
  );
}
