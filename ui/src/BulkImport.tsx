// Bulk import from a CSV file: pick it, see what every row will do (a dry run: nothing is
// written), then import it all at once with a progress bar. A file with any problem is listed
// whole, every bad cell with its line, column, value and rule, and cannot be imported.
import {
  Alert,
  Badge,
  Button,
  FileInput,
  Group,
  Modal,
  Progress,
  ScrollArea,
  SegmentedControl,
  Stack,
  Table,
  Text,
} from "@mantine/core";
import { Channel } from "@tauri-apps/api/core";
import { useState } from "react";
import { call } from "./api";
import { commands, type ImportKey, type ImportProgress, type ImportReport } from "./bindings";

export type ImportKind = "users" | "dids";

/** Rows of a preview drawn at once (the rest are counted). */
const PREVIEW_ROWS = 200;

function run(
  kind: ImportKind,
  tenant: string,
  csv: string,
  key: ImportKey,
  dryRun: boolean,
  onProgress: (p: ImportProgress) => void,
): Promise<ImportReport> {
  const progress = new Channel<ImportProgress>();
  progress.onmessage = onProgress;
  return call(
    kind === "users"
      ? commands.usersImport(tenant, csv, key, dryRun, progress)
      : commands.didsImport(tenant, csv, dryRun, progress),
  );
}

const ACTION_COLOR: Record<string, string> = {
  create: "green",
  update: "blue",
  unchanged: "gray",
  error: "red",
};

interface Props {
  tenant: string;
  kind: ImportKind;
  opened: boolean;
  onClose: () => void;
  onImported: (r: ImportReport) => void;
}

export function ImportModal({ tenant, kind, opened, onClose, onImported }: Props) {
  const [file, setFile] = useState<File | null>(null);
  const [csv, setCsv] = useState<string | null>(null);
  const [key, setKey] = useState<ImportKey>("email");
  const [preview, setPreview] = useState<ImportReport | null>(null);
  const [progress, setProgress] = useState<ImportProgress | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const what = kind === "users" ? "users" : "numbers";

  function reset() {
    setFile(null);
    setCsv(null);
    setPreview(null);
    setProgress(null);
    setError(null);
    setBusy(false);
  }

  async function check(text: string, k: ImportKey) {
    setBusy(true);
    setError(null);
    try {
      setPreview(await run(kind, tenant, text, k, true, () => {}));
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  }

  async function choose(f: File | null) {
    reset();
    setFile(f);
    if (!f) return;
    const text = await f.text();
    setCsv(text);
    await check(text, key);
  }

  async function importAll() {
    if (csv === null) return;
    setBusy(true);
    setError(null);
    try {
      const r = await run(kind, tenant, csv, key, false, setProgress);
      if (r.errors.length > 0) {
        // The tenant changed since the preview: show what is wrong now.
        setPreview(r);
      } else {
        onImported(r);
        reset();
      }
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  }

  const changes = preview ? preview.created + preview.updated : 0;
  const canImport = preview !== null && preview.errors.length === 0 && changes > 0 && !busy;
  return (
    <Modal
      opened={opened}
      onClose={() => {
        reset();
        onClose();
      }}
      title={`Import ${what} into ${tenant}`}
      size="xl"
    >
      <Stack>
        <Text size="sm" c="dimmed">
          {kind === "users"
            ? "A CSV file with a header row (email, name, extension, …: the columns of an export). Rows update the users they match; a new user without an extension gets the lowest free one. Nothing is written until you press Import, and then all of it or nothing."
            : "A CSV file with a header row: number, label, destination, trunk. Rows update the numbers they match."}
        </Text>
        <Group align="end">
          <FileInput
            label="CSV file"
            placeholder="Choose a file"
            accept=".csv,text/csv,text/plain"
            value={file}
            onChange={choose}
            clearable
            style={{ flex: 1 }}
            data-testid="import-file"
          />
          {kind === "users" && (
            <SegmentedControl
              value={key}
              onChange={(v) => {
                const k = v as ImportKey;
                setKey(k);
                if (csv !== null) check(csv, k);
              }}
              data={[
                { value: "email", label: "Match on e-mail" },
                { value: "extension", label: "Match on extension" },
              ]}
            />
          )}
        </Group>
        {error && <Alert color="red">{error}</Alert>}
        {preview && (
          <Group gap="xs" data-testid="import-summary">
            <Badge color="green">{preview.created} to create</Badge>
            <Badge color="blue">{preview.updated} to update</Badge>
            <Badge color="gray">{preview.unchanged} unchanged</Badge>
            {preview.errors.length > 0 && (
              <Badge color="red">{preview.errors.length} problem(s)</Badge>
            )}
          </Group>
        )}
        {preview && preview.errors.length > 0 && (
          <Alert color="red" title="Fix these in the file, then choose it again">
            <ScrollArea.Autosize mah={220}>
              <Table fz="sm" data-testid="import-errors">
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>Line</Table.Th>
                    <Table.Th>Column</Table.Th>
                    <Table.Th>Value</Table.Th>
                    <Table.Th>What is allowed</Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {preview.errors.map((e) => (
                    <Table.Tr key={`${e.line}-${e.column}-${e.rule}`}>
                      <Table.Td>{e.line === 0 ? "file" : e.line}</Table.Td>
                      <Table.Td>{e.column || "—"}</Table.Td>
                      <Table.Td style={{ fontFamily: "monospace" }}>{e.value}</Table.Td>
                      <Table.Td>{e.rule}</Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </ScrollArea.Autosize>
          </Alert>
        )}
        {preview && preview.rows.length > 0 && (
          <ScrollArea.Autosize mah={320}>
            <Table fz="sm" striped data-testid="import-preview">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Line</Table.Th>
                  <Table.Th>{kind === "users" ? "User" : "Number"}</Table.Th>
                  {kind === "users" && <Table.Th>Extension</Table.Th>}
                  <Table.Th>Action</Table.Th>
                  <Table.Th>Changes</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {preview.rows.slice(0, PREVIEW_ROWS).map((r) => (
                  <Table.Tr key={r.line}>
                    <Table.Td>{r.line}</Table.Td>
                    <Table.Td>{r.key}</Table.Td>
                    {kind === "users" && <Table.Td>{r.extension ?? ""}</Table.Td>}
                    <Table.Td>
                      <Badge size="sm" color={ACTION_COLOR[r.action]}>
                        {r.action}
                      </Badge>
                    </Table.Td>
                    <Table.Td>{r.changes.join(", ")}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
            {preview.rows.length > PREVIEW_ROWS && (
              <Text size="sm" c="dimmed">
                …and {preview.rows.length - PREVIEW_ROWS} more rows
              </Text>
            )}
          </ScrollArea.Autosize>
        )}
        {progress && busy && (
          <Stack gap={4}>
            <Progress
              value={progress.total === 0 ? 100 : (100 * progress.done) / progress.total}
              data-testid="import-progress"
            />
            <Text size="xs" c="dimmed">
              {progress.done} of {progress.total} written
            </Text>
          </Stack>
        )}
        <Group justify="end">
          <Button
            onClick={importAll}
            disabled={!canImport}
            loading={busy && preview !== null}
            data-testid="import-run"
          >
            {preview && changes > 0 ? `Import ${changes} ${what}` : "Import"}
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}
