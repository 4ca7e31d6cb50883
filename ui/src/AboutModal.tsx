// About and settings: what is running (version, workspace, engine, who is logged in) and the
// look (light, dark, or the system's), kept by Mantine in the web view's local storage.
import {
  Button,
  type MantineColorScheme,
  Modal,
  SegmentedControl,
  Stack,
  Table,
  Text,
  useMantineColorScheme,
} from "@mantine/core";
import { useState } from "react";
import type { AppInfo } from "./bindings";

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
