// A tenant's ring groups: an extension that rings some of its users (all at once, in order, or
// round robin), then goes on. The workspace checks members, times, the no-answer destination
// (no loop) and refuses deleting a group something routes to; each refusal is shown at its field.
import {
  Alert,
  Autocomplete,
  Badge,
  Button,
  Group,
  Modal,
  MultiSelect,
  NumberInput,
  Select,
  Stack,
  Table,
  Text,
  TextInput,
} from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { useCallback, useEffect, useState } from "react";
import { call, type FieldErrors, fieldErrors } from "./api";
import { commands, type RingGroup, type RingStrategy, type UserSummary } from "./bindings";
import { describeDestination, destinationChoices } from "./destinations";

export const STRATEGY_LABEL: Record<RingStrategy, string> = {
  all: "All at once",
  in_order: "In order",
  round_robin: "Round robin",
};

interface Draft {
  name: string;
  extension: string;
  strategy: RingStrategy;
  members: string[];
  memberSeconds: number;
  totalSeconds: number;
  noAnswer: string;
}

const EMPTY: Draft = {
  name: "",
  extension: "",
  strategy: "all",
  members: [],
  memberSeconds: 20,
  totalSeconds: 60,
  noAnswer: "hangup",
};

function draftOf(g: RingGroup): Draft {
  return {
    name: g.name,
    extension: String(g.extension),
    strategy: g.strategy,
    members: g.members.map((m) => String(m.extension)),
    memberSeconds: g.member_seconds,
    totalSeconds: g.total_seconds,
    noAnswer: g.no_answer,
  };
}

export function RingGroupPanel({ tenant }: { tenant: string }) {
  const [groups, setGroups] = useState<RingGroup[] | null>(null);
  const [people, setPeople] = useState<UserSummary[]>([]);
  const [loadError, setLoadError] = useState<string | null>(null);
  // null: closed; "new": a new group; a number: that group's extension.
  const [editing, setEditing] = useState<"new" | number | null>(null);
  const [draft, setDraft] = useState<Draft>(EMPTY);
  const [errors, setErrors] = useState<FieldErrors>({});

  const reload = useCallback(async () => {
    try {
      const [g, p] = await Promise.all([
        call(commands.ringGroupList(tenant)),
        call(commands.userList(tenant)),
      ]);
      setGroups(g);
      setPeople(p.filter((u) => u.status !== "deleted"));
      setLoadError(null);
    } catch (e) {
      setLoadError(e instanceof Error ? e.message : String(e));
    }
  }, [tenant]);
  useEffect(() => {
    reload();
  }, [reload]);

  const open = (g: RingGroup | null) => {
    setErrors({});
    setDraft(g ? draftOf(g) : EMPTY);
    setEditing(g ? g.extension : "new");
  };

  async function save(event: React.FormEvent) {
    event.preventDefault();
    setErrors({});
    const members = draft.members.map(Number);
    try {
      if (editing === "new") {
        const g = await call(
          commands.ringGroupCreate({
            tenant,
            name: draft.name,
            extension: draft.extension.trim() ? Number(draft.extension) : null,
            strategy: draft.strategy,
            members,
            member_seconds: draft.memberSeconds,
            total_seconds: draft.totalSeconds,
            no_answer: draft.noAnswer,
          }),
        );
        notifications.show({ message: `Ring group ${g.name} is extension ${g.extension}` });
      } else if (editing !== null) {
        await call(
          commands.ringGroupUpdate(tenant, editing, {
            name: draft.name,
            strategy: draft.strategy,
            members,
            member_seconds: draft.memberSeconds,
            total_seconds: draft.totalSeconds,
            no_answer: draft.noAnswer,
            expected_version: groups?.find((g) => g.extension === editing)?.version ?? null,
          }),
        );
      }
      setEditing(null);
      await reload();
    } catch (e) {
      setErrors(fieldErrors(e));
    }
  }

  async function remove(g: RingGroup) {
    try {
      await call(commands.ringGroupDelete(tenant, g.extension));
      notifications.show({ message: `Ring group ${g.name} (${g.extension}) deleted` });
      await reload();
    } catch (e) {
      notifications.show({ color: "red", message: e instanceof Error ? e.message : String(e) });
    }
  }

  const destinations = destinationChoices(
    people,
    groups ?? [],
    typeof editing === "number" ? editing : undefined,
  );
  const described = (d: string) => describeDestination(d, people, groups ?? []);

  return (
    <Stack data-testid="ring-groups">
      <Group justify="space-between">
        <Text size="sm" c="dimmed">
          A ring group is an extension that rings some of the tenant's users; members on DND are
          skipped. Numbers and other groups can send calls to it.
        </Text>
        <Button size="xs" onClick={() => open(null)} data-testid="ring-group-new">
          New ring group
        </Button>
      </Group>
      {loadError && <Alert color="red">{loadError}</Alert>}
      <Table data-testid="ring-group-table">
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Extension</Table.Th>
            <Table.Th>Name</Table.Th>
            <Table.Th>Rings</Table.Th>
            <Table.Th>Members</Table.Th>
            <Table.Th>Nobody answers</Table.Th>
            <Table.Th />
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {(groups ?? []).map((g) => (
            <Table.Tr key={g.extension} data-testid={`ring-group-${g.extension}`}>
              <Table.Td>{g.extension}</Table.Td>
              <Table.Td>{g.name}</Table.Td>
              <Table.Td>
                <Badge variant="light">{STRATEGY_LABEL[g.strategy]}</Badge>{" "}
                {g.strategy === "all"
                  ? `${g.total_seconds} s`
                  : `${g.member_seconds} s each, ${g.total_seconds} s in all`}
              </Table.Td>
              <Table.Td>
                {g.members
                  .map((m) => `${m.extension} ${m.name}`)
                  .join(g.strategy === "all" ? ", " : " → ")}
              </Table.Td>
              <Table.Td>{described(g.no_answer)}</Table.Td>
              <Table.Td>
                <Group gap={4} wrap="nowrap">
                  <Button size="compact-xs" variant="subtle" onClick={() => open(g)}>
                    Edit
                  </Button>
                  <Button
                    size="compact-xs"
                    variant="subtle"
                    color="red"
                    onClick={() => remove(g)}
                    data-testid={`ring-group-delete-${g.extension}`}
                  >
                    Delete
                  </Button>
                </Group>
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {groups?.length === 0 && (
        <Text size="sm" c="dimmed">
          No ring groups yet.
        </Text>
      )}
      <Modal
        opened={editing !== null}
        onClose={() => setEditing(null)}
        title={editing === "new" ? "New ring group" : `Ring group ${editing}`}
      >
        <form onSubmit={save} aria-label="Ring group">
          <Stack gap="xs">
            <TextInput
              label="Name"
              value={draft.name}
              onChange={(e) => setDraft({ ...draft, name: e.currentTarget.value })}
              error={errors.name}
              data-testid="ring-group-name"
            />
            <TextInput
              label="Extension"
              description={
                editing === "new" ? "Empty: the lowest free number of the range" : undefined
              }
              value={draft.extension}
              disabled={editing !== "new"}
              onChange={(e) => setDraft({ ...draft, extension: e.currentTarget.value })}
              error={errors.extension}
              data-testid="ring-group-extension"
            />
            <Select
              label="Rings"
              data={Object.entries(STRATEGY_LABEL).map(([value, label]) => ({ value, label }))}
              value={draft.strategy}
              onChange={(v) => v && setDraft({ ...draft, strategy: v as RingStrategy })}
              allowDeselect={false}
              data-testid="ring-group-strategy"
            />
            <MultiSelect
              label="Members"
              description="In ringing order (the order you pick them)"
              data={people.map((u) => ({
                value: String(u.extension),
                label: `${u.extension} ${u.display_name}`,
              }))}
              value={draft.members}
              onChange={(members) => setDraft({ ...draft, members })}
              searchable
              error={errors.members}
              data-testid="ring-group-members"
            />
            <Group grow>
              <NumberInput
                label="Each member rings (s)"
                value={draft.memberSeconds}
                onChange={(v) => setDraft({ ...draft, memberSeconds: Number(v) || 0 })}
                disabled={draft.strategy === "all"}
                error={errors.member_seconds}
              />
              <NumberInput
                label="The group rings in all (s)"
                value={draft.totalSeconds}
                onChange={(v) => setDraft({ ...draft, totalSeconds: Number(v) || 0 })}
                error={errors.total_seconds}
                data-testid="ring-group-total"
              />
            </Group>
            <Autocomplete
              label="When nobody answers"
              value={draft.noAnswer}
              onChange={(noAnswer) => setDraft({ ...draft, noAnswer })}
              data={destinations}
              renderOption={({ option }) => described(option.value)}
              limit={20}
              error={errors.no_answer}
              data-testid="ring-group-no-answer"
            />
            {errors._form && <Alert color="red">{errors._form}</Alert>}
            <Group justify="flex-end">
              <Button type="submit" data-testid="ring-group-save">
                {editing === "new" ? "Create" : "Save"}
              </Button>
            </Group>
          </Stack>
        </form>
      </Modal>
    </Stack>
  );
}
