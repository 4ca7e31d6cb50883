import { Alert, Badge, Button, Group, Modal, Stack, Tabs, Text, Title } from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { useCallback, useEffect, useState } from "react";
import { AuditView } from "./AuditView";
import { call } from "./api";
import { type ImportKind, ImportModal } from "./BulkImport";
import { commands, type Tenant, type User, type UserSummary } from "./bindings";
import { EditTenantModal } from "./EditTenantModal";
import { EditUserModal } from "./EditUserModal";
import { useLive } from "./live";
import { NewUserForm } from "./NewUserForm";
import { RingGroupPanel } from "./RingGroups";
import { DidPanel, PolicyPanel } from "./RoutingViews";
import { markPainted } from "./startup";
import { UserTable } from "./UserTable";

interface Props {
  tenant: Tenant;
  onTenantChanged: () => void;
}

export function TenantView({ tenant, onTenantChanged }: Props) {
  const [users, setUsers] = useState<UserSummary[] | null>(null);
  const [endpoints, setEndpoints] = useState<Map<number, string[]>>(new Map());
  const [error, setError] = useState<string | null>(null);
  const [editing, setEditing] = useState<User | null>(null);
  const [deleting, setDeleting] = useState<UserSummary | null>(null);
  const [editingTenant, setEditingTenant] = useState(false);
  const [importing, setImporting] = useState<ImportKind | null>(null);
  const [justMade, setJustMade] = useState<number | null>(null);
  const [numbersVersion, setNumbersVersion] = useState(0);

  const reload = useCallback(async () => {
    try {
      const [list, devices] = await Promise.all([
        call(commands.userList(tenant.slug)),
        call(commands.deviceListOfTenant(tenant.slug)),
      ]);
      const by = new Map<number, string[]>();
      for (const d of devices) by.set(d.user_id, [...(by.get(d.user_id) ?? []), d.sip_username]);
      setUsers(list);
      setEndpoints(by);
      setError(null);
      markPainted("users");
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  }, [tenant.slug]);

  useEffect(() => {
    reload();
  }, [reload]);

  // The tenant's view holds the devices it had when it opened: opened again when they change.
  const deviceSet = [...endpoints.values()].flat().sort().join(",");
  const { live, error: liveError } = useLive("tenant", users ? tenant.slug : null, deviceSet);

  async function act(what: string, op: () => Promise<unknown>) {
    try {
      await op();
      notifications.show({ message: what });
      await reload();
      onTenantChanged();
    } catch (e) {
      notifications.show({ color: "red", message: e instanceof Error ? e.message : String(e) });
    }
  }

  async function exportCsv(what: ImportKind) {
    try {
      const f = await call(commands.exportToDownloads(tenant.slug, what));
      notifications.show({ message: `${f.rows} row(s) exported to ${f.path}` });
    } catch (e) {
      notifications.show({ color: "red", message: e instanceof Error ? e.message : String(e) });
    }
  }

  function bulkBar(what: ImportKind) {
    return (
      <Group gap="xs" justify="end">
        <Button
          variant="default"
          size="xs"
          onClick={() => setImporting(what)}
          data-testid={`import-${what}`}
        >
          Import CSV…
        </Button>
        <Button
          variant="default"
          size="xs"
          onClick={() => exportCsv(what)}
          data-testid={`export-${what}`}
        >
          Export CSV
        </Button>
      </Group>
    );
  }

  return (
    <Stack style={{ flex: 1, minHeight: 0 }}>
      <Group justify="space-between">
        <div>
          <Title order={2}>{tenant.name}</Title>
          <Text size="sm" c="dimmed">
            {tenant.slug} · PBX {tenant.pbx} · extensions {tenant.ext_range}
          </Text>
        </div>
        <Group>
          <Badge color={tenant.status === "active" ? "green" : "orange"}>{tenant.status}</Badge>
          <Button variant="default" size="xs" onClick={() => setEditingTenant(true)}>
            Edit tenant
          </Button>
          <Button
            variant="default"
            size="xs"
            onClick={() =>
              act(tenant.status === "active" ? "Tenant suspended" : "Tenant resumed", async () =>
                call(
                  commands.tenantSetStatus(
                    tenant.slug,
                    tenant.status === "active" ? "suspended" : "active",
                  ),
                ),
              )
            }
          >
            {tenant.status === "active" ? "Suspend tenant" : "Resume tenant"}
          </Button>
        </Group>
      </Group>
      <Tabs
        defaultValue="users"
        keepMounted={false}
        style={{ flex: 1, minHeight: 0, display: "flex", flexDirection: "column" }}
      >
        <Tabs.List>
          <Tabs.Tab value="users">Users</Tabs.Tab>
          <Tabs.Tab value="numbers" data-testid="tab-numbers">
            Numbers
          </Tabs.Tab>
          <Tabs.Tab value="ring-groups" data-testid="tab-ring-groups">
            Ring groups
          </Tabs.Tab>
          <Tabs.Tab value="policies" data-testid="tab-policies">
            Outbound policies
          </Tabs.Tab>
          <Tabs.Tab value="audit" data-testid="tab-audit">
            Audit
          </Tabs.Tab>
        </Tabs.List>
        <Tabs.Panel value="numbers" pt="sm">
          {bulkBar("dids")}
          <DidPanel key={numbersVersion} tenant={tenant.slug} pbx={tenant.pbx} />
        </Tabs.Panel>
        <Tabs.Panel value="ring-groups" pt="sm">
          <RingGroupPanel tenant={tenant.slug} />
        </Tabs.Panel>
        <Tabs.Panel value="audit" pt="sm" style={{ flex: 1, minHeight: 0, display: "flex" }}>
          <AuditView tenant={tenant.slug} />
        </Tabs.Panel>
        <Tabs.Panel value="policies" pt="sm">
          <PolicyPanel tenant={tenant.slug} pbx={tenant.pbx} />
        </Tabs.Panel>
        <Tabs.Panel
          value="users"
          pt="sm"
          style={{ flex: 1, minHeight: 0, display: "flex", flexDirection: "column", gap: 16 }}
        >
          {bulkBar("users")}
          <NewUserForm
            tenant={tenant.slug}
            onCreated={(u) => {
              setJustMade(u.id);
              reload();
              onTenantChanged();
            }}
          />
          {error && <Alert color="red">{error}</Alert>}
          {users && (
            <UserTable
              users={users}
              highlight={justMade}
              endpoints={endpoints}
              live={live}
              liveWhy={liveError}
              onEdit={async (u) => {
                try {
                  setEditing(await call(commands.userShow(u.id)));
                } catch (e) {
                  notifications.show({
                    color: "red",
                    message: e instanceof Error ? e.message : String(e),
                  });
                }
              }}
              onToggleSuspend={(u) =>
                act(
                  u.status === "suspended"
                    ? `${u.display_name} resumed`
                    : `${u.display_name} suspended`,
                  () =>
                    call(
                      commands.userSetStatus(
                        u.id,
                        u.status === "suspended" ? "active" : "suspended",
                      ),
                    ),
                )
              }
              onDelete={setDeleting}
            />
          )}
        </Tabs.Panel>
      </Tabs>
      <ImportModal
        tenant={tenant.slug}
        kind={importing ?? "users"}
        opened={importing !== null}
        onClose={() => setImporting(null)}
        onImported={(r) => {
          setImporting(null);
          notifications.show({
            message: `Imported: ${r.created} created, ${r.updated} updated, ${r.unchanged} unchanged`,
          });
          if (importing === "dids") setNumbersVersion((v) => v + 1);
          reload();
          onTenantChanged();
        }}
      />
      <EditTenantModal
        tenant={editingTenant ? tenant : null}
        onClose={() => setEditingTenant(false)}
        onSaved={() => {
          setEditingTenant(false);
          notifications.show({ message: "Tenant saved" });
          onTenantChanged();
        }}
      />
      <EditUserModal
        user={editing}
        live={live}
        onClose={() => setEditing(null)}
        onSaved={() => {
          setEditing(null);
          reload();
        }}
      />
      <Modal opened={deleting !== null} onClose={() => setDeleting(null)} title="Delete user">
        {deleting && (
          <Stack>
            <Text>
              Delete {deleting.display_name} (extension {deleting.extension})? Their devices are
              removed; the extension is held back for 30 days before it can be given to someone
              else.
            </Text>
            <Group justify="flex-end">
              <Button variant="default" onClick={() => setDeleting(null)}>
                Cancel
              </Button>
              <Button
                color="red"
                data-testid="confirm-delete"
                onClick={() => {
                  const u = deleting;
                  setDeleting(null);
                  act(`${u.display_name} deleted`, () => call(commands.userDelete(u.id)));
                }}
              >
                Delete
              </Button>
            </Group>
          </Stack>
        )}
      </Modal>
    </Stack>
  );
}
