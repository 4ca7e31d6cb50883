// About and settings: what is running (version, workspace, engine, who is logged in), the
// workspace to open at the next start (kept in the app's settings file), updates, and the look
// (light, dark, or the system's, kept by Mantine in the web view's local storage).
import {
  Alert,
  Button,
  Group,
  type MantineColorScheme,
  Modal,
  SegmentedControl,
  Stack,
  Table,
  Text,
  TextInput,
  useMantineColorScheme,
} from "@mantine/core";
import { useEffect, useState } from "react";
import { call, type FieldErrors, fieldErrors } from "./api";
import { type AppInfo, commands, type WorkspaceChoice } from "./bindings";
import { UpdatesPanel } from "./Updates";

/** The workspace file the app opens from its next start; a restart opens it. */
function NextWorkspace({ team }: { team: boolean }) {
  const [choice, setChoice] = useState<WorkspaceChoice | null>(null);
  const [path, setPath] = useState("");
  const [errors, setErrors] = useState<FieldErrors>({});
  const [kept, setKept] = useState(false);
  useEffect(() => {
    call(commands.workspaceChoiceGet())
      .then((c) => {
        setChoice(c);
        setPath(c.chosen ?? "");
      })
      .catch((e) => setErrors(fieldErrors(e)));
  }, []);

  async function keep(event: React.FormEvent) {
    event.preventDefault();
    setErrors({});
    setKept(false);
    try {
      setChoice(await call(commands.workspaceChoose(path)));
      setKept(true);
    } catch (e) {
      setErrors(fieldErrors(e));
    }
  }

  return (
    <form onSubmit={keep} aria-label="Workspace at the next start">
      <Stack gap="xs">
        <TextInput
          label="Workspace at the next start"
          description={
            team
              ? "A laptop workspace (SQLite file) to open instead of this team workspace; empty: the default file"
              : "An SQLite file (a new one is made if it does not exist); empty: the default file"
          }
          placeholder="/home/me/customers/clinic.sqlite"
          value={path}
          onChange={(e) => setPath(e.currentTarget.value)}
          error={errors.workspace}
          data-testid="next-workspace"
        />
        {errors._form && <Alert color="red">{errors._form}</Alert>}
        {choice?.overridden_by_environment && (
          <Alert color="yellow" data-testid="next-workspace-overridden">
            PBXDESK_WORKSPACE or PBXDESK_DATABASE_URL is set where pbxdesk starts: that one is
            opened, whatever is chosen here.
          </Alert>
        )}
        <Group>
          <Button type="submit" size="xs" variant="light" data-testid="next-workspace-keep">
            Keep for the next start
          </Button>
          {kept && (
            <Button
              size="xs"
              onClick={() => commands.appRestart()}
              data-testid="next-workspace-restart"
            >
              Restart now
            </Button>
          )}
        </Group>
        {kept && (
          <Text size="xs" c="dimmed" data-testid="next-workspace-kept">
            Kept: {choice?.chosen ?? "the default file"} opens at the next start.
          </Text>
        )}
      </Stack>
    </form>
  );
}

export function AboutButton({ info }: { info: AppInfo }) {
  const [open, setOpen] = useState(false);
  const { colorScheme, setColorScheme } = useMantineColorScheme();
  const rows: [string, string][] = [
    ["Version", `pbxdesk ${info.version}`],
    ["Workspace", info.workspace],
    ["Engine", info.team ? "PostgreSQL (a team workspace)" : "SQLite (this laptop)"],
    ["Logged in as", info.operator ?? "nobody"],
  ];
  return (
    <>
      <Button
        size="compact-xs"
        variant="subtle"
        onClick={() => setOpen(true)}
        data-testid="about-open"
      >
        About
      </Button>
      <Modal opened={open} onClose={() => setOpen(false)} title="About pbxdesk">
        <Stack>
          <Table data-testid="about">
            <Table.Tbody>
              {rows.map(([k, v]) => (
                <Table.Tr key={k}>
                  <Table.Th>{k}</Table.Th>
                  <Table.Td style={{ wordBreak: "break-all" }}>{v}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
          <NextWorkspace team={info.team} />
          <UpdatesPanel />
          <div>
            <Text size="sm" fw={500} mb={4}>
              Theme
            </Text>
            <SegmentedControl
              value={colorScheme}
              onChange={(v) => setColorScheme(v as MantineColorScheme)}
              data={[
                { value: "light", label: "Light" },
                { value: "dark", label: "Dark" },
                { value: "auto", label: "As the system" },
              ]}
              data-testid="theme"
            />
          </div>
          <Text size="xs" c="dimmed">
            The local API is switched on and off in the header (API off/on).
          </Text>
        </Stack>
      </Modal>
    </>
  );
}
