// The fleet: every PBX whose render differs from its last apply, applied from one screen,
// a few at a time, each through the same guarded apply as one PBX (`pbxdesk apply
// --all-pending`). One line per PBX as its apply ends; one PBX failing changes no other.
import {
  Alert,
  Badge,
  Button,
  Checkbox,
  Group,
  Loader,
  NumberInput,
  Stack,
  Table,
  Text,
  Title,
} from "@mantine/core";
import { Channel } from "@tauri-apps/api/core";
import { useCallback, useEffect, useState } from "react";
import { call } from "./api";
import { commands, type FleetLine, type FleetOutcome, type FleetReport } from "./bindings";

const outcomeColor: Record<FleetOutcome, string> = {
  applied: "green",
  nothing_to_do: "gray",
  refused: "orange",
  unreachable: "orange",
  stopped: "orange",
  rolled_back: "red",
  failed: "red",
};

function Lines({ lines }: { lines: FleetLine[] }) {
  return (
    <Table data-testid="fleet-lines">
      <Table.Tbody>
        {lines.map((l) => (
          <Table.Tr key={l.pbx} data-testid={`fleet-line-${l.pbx}`}>
            <Table.Td w={200}>{l.pbx}</Table.Td>
            <Table.Td w={130}>
              <Badge color={outcomeColor[l.outcome]}>{l.outcome}</Badge>
            </Table.Td>
            <Table.Td>{l.detail}</Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

export function FleetView({ onApplied }: { onApplied: () => void }) {
  const [pending, setPending] = useState<string[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [parallel, setParallel] = useState<number>(4);
  const [addIncludes, setAddIncludes] = useState(false);
  const [live, setLive] = useState<FleetLine[]>([]);
  const [report, setReport] = useState<FleetReport | null>(null);
  const [running, setRunning] = useState(false);

  const load = useCallback(async () => {
    try {
      setPending(await call(commands.pbxPending()));
      setError(null);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  }, []);
  useEffect(() => {
    load();
  }, [load]);

  async function run() {
    setRunning(true);
    setLive([]);
    setReport(null);
    setError(null);
    const progress = new Channel<FleetLine>();
    progress.onmessage = (line) => setLive((l) => [...l, line]);
    try {
      setReport(
        await call(
          commands.pbxApplyPending(
            {
              dry_run: false,
              overwrite_drift: false,
              add_includes: addIncludes,
              confirm_seconds: null,
            },
            parallel,
            progress,
          ),
        ),
      );
      onApplied();
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setRunning(false);
      load();
    }
  }

  return (
    <Stack data-testid="fleet">
      <Title order={2}>Fleet</Title>
      <Text size="sm" c="dimmed">
        Every PBX whose configuration changed since its last apply, each applied through the same
        guarded steps (also `pbxdesk apply --all-pending`).
      </Text>
      {error && <Alert color="red">{error}</Alert>}
      {!pending && !error && <Loader />}
      {pending && pending.length === 0 && !report && (
        <Alert color="gray" data-testid="fleet-none">
          Every PBX runs its configuration already.
        </Alert>
      )}
      {pending && pending.length > 0 && (
        <Text size="sm" data-testid="fleet-pending">
          Pending: {pending.join(", ")}
        </Text>
      )}
      <Group align="flex-end">
        <NumberInput
          label="PBXs at once"
          min={1}
          max={16}
          w={140}
          value={parallel}
          onChange={(v) => setParallel(typeof v === "number" ? v : 4)}
        />
        <Checkbox
          label="Add pbxdesk's include lines where missing"
          checked={addIncludes}
          onChange={(e) => setAddIncludes(e.currentTarget.checked)}
        />
        <Button
          onClick={run}
          loading={running}
          disabled={!pending || pending.length === 0}
          data-testid="fleet-run"
        >
          Apply all pending
        </Button>
      </Group>
      {running && <Lines lines={live} />}
      {report && <Lines lines={report.lines} />}
    </Stack>
  );
}
