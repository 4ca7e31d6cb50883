import { Badge, Button, Group, Paper, Text, TextInput, VisuallyHidden } from "@mantine/core";
import { useVirtualizer } from "@tanstack/react-virtual";
import { useEffect, useMemo, useRef, useState } from "react";
import type { Live, UserSummary } from "./bindings";
import { DeviceDot } from "./LiveStatus";

interface Props {
  users: UserSummary[];
  /** Each user's devices (SIP usernames, the PBX's endpoints), by user id, when known. */
  endpoints?: Map<number, string[]>;
  /** The tenant's live state, for a status dot per device. */
  live?: Live | null;
  /** Why there is no live state, when there is none. */
  liveWhy?: string | null;
  onEdit: (u: UserSummary) => void;
  onToggleSuspend: (u: UserSummary) => void;
  onDelete: (u: UserSummary) => void;
  /** A user to scroll to and mark (the one just created). */
  highlight?: number | null;
}

const ROW_HEIGHT = 44;
const COLUMNS = "90px minmax(160px, 2fr) minmax(180px, 2fr) 90px 100px 70px 230px";
const ELLIPSIS = { overflow: "hidden", textOverflow: "ellipsis", whiteSpace: "nowrap" } as const;

/** Lower case without accents: "alvarez" finds "José Álvarez". */
export function folded(s: string): string {
  return s
    .normalize("NFD")
    .replace(/\p{Diacritic}/gu, "")
    .toLowerCase();
}

/** Virtualized: only the rows in view are in the DOM, so 10,000 users scroll smoothly. */
export function UserTable({
  users,
  endpoints,
  live = null,
  liveWhy = null,
  onEdit,
  onToggleSuspend,
  onDelete,
  highlight = null,
}: Props) {
  const [filter, setFilter] = useState("");
  const shown = useMemo(() => {
    const f = folded(filter.trim());
    if (!f) return users;
    return users.filter(
      (u) =>
        folded(u.display_name).includes(f) ||
        folded(u.email).includes(f) ||
        String(u.extension).startsWith(f),
    );
  }, [users, filter]);
  const scrollRef = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: shown.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 10,
    initialRect: { width: 1000, height: 600 },
  });
  const highlighted = highlight === null ? -1 : shown.findIndex((u) => u.id === highlight);
  useEffect(() => {
    if (highlighted >= 0) virtualizer.scrollToIndex(highlighted, { align: "center" });
  }, [highlighted, virtualizer]);

  return (
    <Paper withBorder style={{ flex: 1, minHeight: 240, display: "flex", flexDirection: "column" }}>
      <Group p="xs" justify="space-between">
        <TextInput
          placeholder="Filter by name, e-mail or extension"
          value={filter}
          onChange={(e) => setFilter(e.currentTarget.value)}
          w={320}
          aria-label="Filter users"
        />
        <Text size="sm" c="dimmed" data-testid="user-count">
          {shown.length} of {users.length} users
        </Text>
      </Group>
      {shown.length === 0 && (
        <Text size="sm" c="dimmed" px="sm" pb="sm" data-testid="user-empty">
          {users.length === 0
            ? "No users yet: add one above, or import a CSV file."
            : `No user matches "${filter.trim()}".`}
        </Text>
      )}
      {/* A real table laid out as a grid, so rows can be positioned for virtualization. */}
      <div ref={scrollRef} style={{ flex: 1, overflow: "auto" }} data-testid="user-scroll">
        <table style={{ display: "grid", width: "100%", borderCollapse: "collapse" }}>
          <thead
            style={{
              display: "grid",
              position: "sticky",
              top: 0,
              zIndex: 1,
              background: "var(--mantine-color-body)",
            }}
          >
            <tr
              style={{
                display: "grid",
                gridTemplateColumns: COLUMNS,
                padding: "6px 12px",
                fontSize: 13,
                textAlign: "left",
                borderBottom: "1px solid var(--mantine-color-default-border)",
              }}
            >
              <th>Ext</th>
              <th>Name</th>
              <th>E-mail</th>
              <th>Role</th>
              <th>Status</th>
              <th>Phones</th>
              <th>
                <VisuallyHidden>Actions</VisuallyHidden>
              </th>
            </tr>
          </thead>
          <tbody
            style={{ display: "grid", height: virtualizer.getTotalSize(), position: "relative" }}
          >
            {virtualizer.getVirtualItems().map((item) => {
              const u = shown[item.index];
              return (
                <tr
                  key={u.id}
                  data-testid="user-row"
                  data-highlighted={item.index === highlighted ? "true" : undefined}
                  style={{
                    background:
                      item.index === highlighted ? "var(--mantine-color-yellow-light)" : undefined,
                    position: "absolute",
                    top: 0,
                    left: 0,
                    right: 0,
                    height: ROW_HEIGHT,
                    transform: `translateY(${item.start}px)`,
                    display: "grid",
                    gridTemplateColumns: COLUMNS,
                    alignItems: "center",
                    padding: "0 12px",
                    fontSize: 14,
                    borderBottom: "1px solid var(--mantine-color-default-border)",
                  }}
                >
                  <td data-testid="user-ext">{u.extension}</td>
                  <td style={ELLIPSIS}>{u.display_name}</td>
                  <td style={ELLIPSIS}>{u.email}</td>
                  <td>{u.role}</td>
                  <td>
                    <Badge
                      size="sm"
                      color={u.status === "active" ? "green" : "orange"}
                      variant="light"
                    >
                      {u.status}
                    </Badge>
                  </td>
                  <td data-testid="user-phones">
                    {endpoints?.has(u.id)
                      ? endpoints
                          .get(u.id)
                          ?.map((e) => <DeviceDot key={e} endpoint={e} live={live} why={liveWhy} />)
                      : u.device_count}
                  </td>
                  <td>
                    <Group gap={4} wrap="nowrap">
                      <Button size="compact-xs" variant="default" onClick={() => onEdit(u)}>
                        Edit
                      </Button>
                      <Button
                        size="compact-xs"
                        variant="default"
                        onClick={() => onToggleSuspend(u)}
                      >
                        {u.status === "suspended" ? "Resume" : "Suspend"}
                      </Button>
                      <Button
                        size="compact-xs"
                        color="red"
                        variant="light"
                        onClick={() => onDelete(u)}
                      >
                        Delete
                      </Button>
                    </Group>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </Paper>
  );
}
