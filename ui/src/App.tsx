import {
  AppShell,
  Badge,
  Button,
  Group,
  NavLink,
  ScrollArea,
  Stack,
  Text,
  Title,
} from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { useCallback, useEffect, useState } from "react";
import { AboutButton } from "./AboutModal";
import { AuditView } from "./AuditView";
import { call } from "./api";
import { type AppInfo, commands, type Pbx, type Tenant } from "./bindings";
import { FleetView } from "./FleetView";
import { LocalApiControl } from "./LocalApiControl";
import { LoginScreen } from "./LoginScreen";
import { NewPbxModal } from "./NewPbxModal";
import { NewTenantModal } from "./NewTenantModal";
import { PbxView } from "./PbxView";
import { markPainted } from "./startup";
import { TenantView } from "./TenantView";
import { tellOfUpdate } from "./Updates";

export function App() {
  const [info, setInfo] = useState<AppInfo | null>(null);
  const [tenants, setTenants] = useState<Tenant[]>([]);
  const [selected, setSelected] = useState<string | null>(null);
  const [creating, setCreating] = useState(false);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [pbxes, setPbxes] = useState<Pbx[]>([]);
  const [pbxView, setPbxView] = useState<string | null>(null);
  const [addingPbx, setAddingPbx] = useState(false);
  const [fleet, setFleet] = useState(false);
  const [audit, setAudit] = useState(false);

  const reloadTenants = useCallback(async () => {
    try {
      setPbxes(await call(commands.pbxList()));
      const list = await call(commands.tenantList());
      setTenants(list);
      markPainted("app");
      setSelected((current) => current ?? list[0]?.slug ?? null);
      setLoadError(null);
    } catch (e) {
      setLoadError(e instanceof Error ? e.message : String(e));
    }
  }, []);

  useEffect(() => {
    call(commands.appInfo())
      .then((i) => {
        setInfo(i);
        if (i.operator !== null) {
          reloadTenants();
          tellOfUpdate((title, message) => notifications.show({ title, message }));
        }
      })
      .catch((e) => setLoadError(e instanceof Error ? e.message : String(e)));
  }, [reloadTenants]);

  if (info && info.operator === null) {
    return (
      <LoginScreen
        workspace={info.workspace}
        onLoggedIn={(i) => {
          setInfo(i);
          reloadTenants();
        }}
      />
    );
  }

  const tenant = tenants.find((t) => t.slug === selected) ?? null;

  return (
    <AppShell navbar={{ width: 260, breakpoint: 0 }} header={{ height: 52 }} padding="md">
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between">
          <Title order={3}>pbxdesk</Title>
          {info && (
            <Group gap="xs">
              <Text size="sm" c="dimmed" title={info.workspace}>
                {info.operator} · {info.team ? info.workspace : info.workspace.split("/").pop()}
              </Text>
              <LocalApiControl />
              <AboutButton info={info} />
              {info.team && (
                <Button
                  size="compact-xs"
                  variant="subtle"
                  onClick={async () => {
                    setInfo(await call(commands.logout()));
                    setTenants([]);
                    setSelected(null);
                  }}
                >
                  Log out
                </Button>
              )}
            </Group>
          )}
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="sm">
        <Group justify="space-between" mb="xs">
          <Text fw={600} size="sm">
            PBXs
          </Text>
          <Button size="xs" variant="light" onClick={() => setAddingPbx(true)}>
            Add PBX
          </Button>
        </Group>
        <Stack gap={2} mb="md">
          {pbxes.length > 1 && (
            <NavLink
              active={fleet}
              label="Fleet"
              description="apply every pending PBX"
              onClick={() => {
                setFleet(true);
                setAudit(false);
                setPbxView(null);
              }}
              data-testid="nav-fleet"
            />
          )}
          {pbxes.map((p) => (
            <NavLink
              key={p.name}
              active={p.name === pbxView}
              label={p.name}
              description={p.host}
              rightSection={
                p.host_key ? null : (
                  <Badge size="xs" color="orange">
                    untrusted
                  </Badge>
                )
              }
              onClick={() => {
                setPbxView(p.name);
                setFleet(false);
                setAudit(false);
                // The lists again: the CLI, a teammate on a team workspace or a PBX double may
                // have changed a profile (its host key trusted, say) since they were read.
                reloadTenants();
              }}
              data-testid={`pbx-${p.name}`}
            />
          ))}
        </Stack>
        <NavLink
          active={audit}
          label="Audit log"
          description="who did what, when"
          onClick={() => {
            setAudit(true);
            setFleet(false);
            setPbxView(null);
          }}
          mb="md"
          data-testid="nav-audit"
        />
        <Group justify="space-between" mb="xs">
          <Text fw={600} size="sm">
            Tenants
          </Text>
          <Button size="xs" variant="light" onClick={() => setCreating(true)}>
            New tenant
          </Button>
        </Group>
        <ScrollArea style={{ flex: 1 }}>
          <Stack gap={2}>
            {tenants.map((t) => (
              <NavLink
                key={t.slug}
                active={t.slug === selected && pbxView === null && !fleet && !audit}
                label={t.name}
                description={`${t.slug} · ${t.ext_range}`}
                rightSection={
                  t.status === "suspended" ? (
                    <Badge size="xs" color="orange">
                      suspended
                    </Badge>
                  ) : (
                    <Badge size="xs" variant="light">
                      {t.user_count}
                    </Badge>
                  )
                }
                onClick={() => {
                  setSelected(t.slug);
                  setPbxView(null);
                  setFleet(false);
                  setAudit(false);
                }}
                data-testid={`tenant-${t.slug}`}
              />
            ))}
            {tenants.length === 0 && !loadError && (
              <Text size="sm" c="dimmed">
                No tenants yet.
              </Text>
            )}
            {loadError && (
              <Text size="sm" c="red">
                {loadError}
              </Text>
            )}
          </Stack>
        </ScrollArea>
      </AppShell.Navbar>
      <AppShell.Main style={{ display: "flex", flexDirection: "column", height: "100vh" }}>
        {audit ? (
          <AuditView />
        ) : fleet ? (
          <FleetView onApplied={reloadTenants} />
        ) : pbxView ? (
          <PbxView
            key={pbxView}
            name={pbxView}
            onChanged={reloadTenants}
            onRemoved={() => {
              setPbxView(null);
              reloadTenants();
            }}
          />
        ) : tenant ? (
          <TenantView key={tenant.slug} tenant={tenant} onTenantChanged={reloadTenants} />
        ) : (
          <Text c="dimmed">Create a tenant to start adding users.</Text>
        )}
      </AppShell.Main>
      <NewPbxModal
        opened={addingPbx}
        onClose={() => setAddingPbx(false)}
        onCreated={async (p) => {
          setAddingPbx(false);
          await reloadTenants();
          setPbxView(p.name);
        }}
      />
      <NewTenantModal
        opened={creating}
        onClose={() => setCreating(false)}
        onCreated={async (t) => {
          setCreating(false);
          await reloadTenants();
          setSelected(t.slug);
        }}
      />
    </AppShell>
  );
}
