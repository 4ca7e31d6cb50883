import {
  Alert,
  Badge,
  Button,
  Code,
  Group,
  Modal,
  NumberInput,
  Paper,
  PasswordInput,
  Select,
  SimpleGrid,
  Stack,
  Tabs,
  Text,
  TextInput,
  Title,
} from "@mantine/core";
import { useEffect, useState } from "react";
import { HistoryPanel } from "./ApplyWizard";
import { call, type FieldErrors, fieldErrors } from "./api";
import { type CheckLine, commands, type Pbx } from "./bindings";
import { LivePanel } from "./LiveStatus";
import { CallPathPanel, PreviewPanel } from "./Preview";
import { TrunkPanel } from "./RoutingViews";

interface Props {
  name: string;
  onChanged: () => void;
  onRemoved: () => void;
}

type Form = {
  host: string;
  ssh_port: number;
  ssh_user: string;
  ssh_auth: Pbx["ssh_auth"];
  ssh_key_path: string;
  ssh_secret: string;
  config_dir: string;
  ami_via: Pbx["ami_via"];
  ami_port: number;
  ami_user: string;
  ami_secret: string;
  db_via: Pbx["db_via"];
  db_port: number;
  db_name: string;
  db_user: string;
  db_password: string;
};

function formOf(p: Pbx): Form {
  return {
    host: p.host,
    ssh_port: p.ssh_port,
    ssh_user: p.ssh_user,
    ssh_auth: p.ssh_auth,
    ssh_key_path: p.ssh_key_path ?? "",
    ssh_secret: "",
    config_dir: p.config_dir,
    ami_via: p.ami_via,
    ami_port: p.ami_port,
    ami_user: p.ami_user ?? "",
    ami_secret: "",
    db_via: p.db_via,
    db_port: p.db_port,
    db_name: p.db_name,
    db_user: p.db_user ?? "",
    db_password: "",
  };
}

/** A PBX's connection profile, its host key, and "check this PBX". */
export function PbxView({ name, onChanged, onRemoved }: Props) {
  const [pbx, setPbx] = useState<Pbx | null>(null);
  const [form, setForm] = useState<Form | null>(null);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [busy, setBusy] = useState<string | null>(null);
  const [offered, setOffered] = useState<string | null>(null);
  const [lines, setLines] = useState<CheckLine[] | null>(null);
  const [removing, setRemoving] = useState(false);

  useEffect(() => {
    call(commands.pbxShow(name))
      .then((p) => {
        setPbx(p);
        setForm(formOf(p));
      })
      .catch((e) => setErrors(fieldErrors(e)));
  }, [name]);

  if (!pbx || !form) {
    return errors._form ? <Alert color="red">{errors._form}</Alert> : null;
  }
  const set = <K extends keyof Form>(k: K, v: Form[K]) => setForm({ ...form, [k]: v });
  // Secrets are write-only: an empty box leaves the stored one as it is.
  const secret = (v: string) => (v === "" ? null : v);

  async function run(what: string, op: () => Promise<void>) {
    setBusy(what);
    setErrors({});
    try {
      await op();
    } catch (e) {
      setErrors(fieldErrors(e));
    } finally {
      setBusy(null);
    }
  }

  const save = () =>
    run("save", async () => {
      if (!pbx) return;
      const p = await call(
        commands.pbxUpdate(name, {
          host: form.host,
          ssh_port: form.ssh_port,
          ssh_user: form.ssh_user,
          ssh_auth: form.ssh_auth,
          ssh_key_path: form.ssh_key_path,
          ssh_secret: secret(form.ssh_secret),
          config_dir: form.config_dir,
          ami_via: form.ami_via,
          ami_port: form.ami_port,
          ami_user: form.ami_user,
          ami_secret: secret(form.ami_secret),
          db_via: form.db_via,
          db_port: form.db_port,
          db_name: form.db_name,
          db_user: form.db_user,
          db_password: secret(form.db_password),
          connect_timeout_ms: null,
          command_timeout_ms: null,
          expected_version: pbx.version,
        }),
      );
      setPbx(p);
      setForm(formOf(p));
      onChanged();
    });

  const via = [
    { value: "tunnel", label: "through SSH (PBX's 127.0.0.1)" },
    { value: "direct", label: "directly" },
  ];

  return (
    <Stack style={{ overflow: "auto" }}>
      <Group justify="space-between">
        <div>
          <Title order={2}>{pbx.name}</Title>
          <Text size="sm" c="dimmed">
            {pbx.ssh_user}@{pbx.host}:{pbx.ssh_port} · config {pbx.config_dir}
          </Text>
        </div>
        <Group>
          {pbx.host_key ? (
            <Badge color="green" title={pbx.host_key}>
              host key pinned
            </Badge>
          ) : (
            <Badge color="orange">host key not trusted</Badge>
          )}
          <Button
            variant="default"
            size="xs"
            loading={busy === "probe"}
            onClick={() =>
              run("probe", async () => setOffered(await call(commands.pbxProbeHostKey(name))))
            }
          >
            Trust host key…
          </Button>
          <Button
            size="xs"
            loading={busy === "check"}
            onClick={() => run("check", async () => setLines(await call(commands.pbxCheck(name))))}
          >
            Check this PBX
          </Button>
        </Group>
      </Group>
      {errors._form && <Alert color="red">{errors._form}</Alert>}
      {lines && (
        <Paper withBorder p="sm" data-testid="check-result">
          <Stack gap={6}>
            {lines.map((l) => (
              <div key={l.item}>
                <Group gap="xs">
                  <Badge color={l.ok ? "green" : "red"} w={56}>
                    {l.ok ? "ok" : "fail"}
                  </Badge>
                  <Text fw={600} size="sm">
                    {l.item}
                  </Text>
                  <Text size="sm">{l.detail}</Text>
                </Group>
                {l.fix?.startsWith("pbxdesk pbx trust ") ? (
                  // The app has the button that does it; the command is for scripts.
                  <Group gap="xs" ml={64}>
                    <Button
                      size="compact-xs"
                      variant="light"
                      loading={busy === "probe"}
                      onClick={() =>
                        run("probe", async () =>
                          setOffered(await call(commands.pbxProbeHostKey(name))),
                        )
                      }
                    >
                      Trust host key…
                    </Button>
                    <Text size="xs" c="dimmed">
                      (or {l.fix})
                    </Text>
                  </Group>
                ) : (
                  l.fix && (
                    <Text size="sm" c="dimmed" ml={64}>
                      Fix: {l.fix}
                    </Text>
                  )
                )}
              </div>
            ))}
          </Stack>
        </Paper>
      )}
      <Tabs defaultValue="live" keepMounted={false}>
        <Tabs.List>
          <Tabs.Tab value="live" data-testid="tab-live">
            Live
          </Tabs.Tab>
          <Tabs.Tab value="profile" data-testid="tab-profile">
            Connection
          </Tabs.Tab>
          <Tabs.Tab value="trunks" data-testid="tab-trunks">
            Trunks
          </Tabs.Tab>
          <Tabs.Tab value="preview" data-testid="tab-preview">
            Preview
          </Tabs.Tab>
          <Tabs.Tab value="callpath" data-testid="tab-callpath">
            Call path
          </Tabs.Tab>
          <Tabs.Tab value="history" data-testid="tab-history">
            History
          </Tabs.Tab>
        </Tabs.List>
        <Tabs.Panel value="live" pt="sm">
          <LivePanel pbx={name} />
        </Tabs.Panel>
        <Tabs.Panel value="trunks" pt="sm">
          <TrunkPanel pbx={name} />
        </Tabs.Panel>
        <Tabs.Panel value="preview" pt="sm">
          <PreviewPanel pbx={name} />
        </Tabs.Panel>
        <Tabs.Panel value="callpath" pt="sm">
          <CallPathPanel pbx={name} />
        </Tabs.Panel>
        <Tabs.Panel value="history" pt="sm">
          <HistoryPanel pbx={name} />
        </Tabs.Panel>
        <Tabs.Panel value="profile" pt="sm">
          <Stack>
            <Paper withBorder p="sm">
              <SimpleGrid cols={3}>
                <TextInput
                  label="Host"
                  value={form.host}
                  onChange={(e) => set("host", e.currentTarget.value)}
                  error={errors.host}
                />
                <NumberInput
                  label="SSH port"
                  value={form.ssh_port}
                  onChange={(v) => set("ssh_port", Number(v))}
                  error={errors.ssh_port}
                />
                <TextInput
                  label="SSH user"
                  value={form.ssh_user}
                  onChange={(e) => set("ssh_user", e.currentTarget.value)}
                  error={errors.ssh_user}
                />
                <Select
                  label="SSH login"
                  data={[
                    { value: "agent", label: "ssh-agent" },
                    { value: "key", label: "key file" },
                    { value: "password", label: "password" },
                  ]}
                  value={form.ssh_auth}
                  onChange={(v) => v && set("ssh_auth", v as Form["ssh_auth"])}
                />
                <TextInput
                  label="Key file"
                  value={form.ssh_key_path}
                  onChange={(e) => set("ssh_key_path", e.currentTarget.value)}
                  error={errors.ssh_key_path}
                  disabled={form.ssh_auth !== "key"}
                />
                <PasswordInput
                  label={form.ssh_auth === "password" ? "SSH password" : "Key passphrase"}
                  placeholder={pbx.ssh_secret_set ? "(stored; type to replace)" : ""}
                  value={form.ssh_secret}
                  onChange={(e) => set("ssh_secret", e.currentTarget.value)}
                  error={errors.ssh_secret}
                />
                <TextInput
                  label="Asterisk config folder"
                  value={form.config_dir}
                  onChange={(e) => set("config_dir", e.currentTarget.value)}
                  error={errors.config_dir}
                />
                <Select
                  label="AMI reached"
                  data={via}
                  value={form.ami_via}
                  onChange={(v) => v && set("ami_via", v as Form["ami_via"])}
                />
                <NumberInput
                  label="AMI port"
                  value={form.ami_port}
                  onChange={(v) => set("ami_port", Number(v))}
                  error={errors.ami_port}
                />
                <TextInput
                  label="AMI user"
                  value={form.ami_user}
                  onChange={(e) => set("ami_user", e.currentTarget.value)}
                  error={errors.ami_user}
                />
                <PasswordInput
                  label="AMI secret"
                  placeholder={pbx.ami_secret_set ? "(stored; type to replace)" : ""}
                  value={form.ami_secret}
                  onChange={(e) => set("ami_secret", e.currentTarget.value)}
                  error={errors.ami_secret}
                />
                <Select
                  label="Database reached"
                  data={via}
                  value={form.db_via}
                  onChange={(v) => v && set("db_via", v as Form["db_via"])}
                />
                <NumberInput
                  label="Database port"
                  value={form.db_port}
                  onChange={(v) => set("db_port", Number(v))}
                  error={errors.db_port}
                />
                <TextInput
                  label="Database name"
                  value={form.db_name}
                  onChange={(e) => set("db_name", e.currentTarget.value)}
                  error={errors.db_name}
                />
                <TextInput
                  label="Database user"
                  value={form.db_user}
                  onChange={(e) => set("db_user", e.currentTarget.value)}
                  error={errors.db_user}
                />
                <PasswordInput
                  label="Database password"
                  placeholder={pbx.db_password_set ? "(stored; type to replace)" : ""}
                  value={form.db_password}
                  onChange={(e) => set("db_password", e.currentTarget.value)}
                  error={errors.db_password}
                />
              </SimpleGrid>
              <Group justify="space-between" mt="sm">
                <Button color="red" variant="light" onClick={() => setRemoving(true)}>
                  Remove PBX
                </Button>
                <Button onClick={save} loading={busy === "save"}>
                  Save profile
                </Button>
              </Group>
            </Paper>
          </Stack>
        </Tabs.Panel>
      </Tabs>
      <Modal opened={removing} onClose={() => setRemoving(false)} title={`Remove ${pbx.name}?`}>
        <Stack>
          <Text size="sm">
            The PBX and its connection profile leave the workspace; nothing on the PBX changes. A
            PBX that still has tenants cannot be removed.
          </Text>
          <Group justify="flex-end">
            <Button variant="default" onClick={() => setRemoving(false)}>
              Cancel
            </Button>
            <Button
              color="red"
              onClick={() =>
                run("remove", async () => {
                  setRemoving(false);
                  await call(commands.pbxRemove(name));
                  onRemoved();
                })
              }
            >
              Remove
            </Button>
          </Group>
        </Stack>
      </Modal>
      <Modal
        opened={offered !== null}
        onClose={() => setOffered(null)}
        title="Trust this host key?"
      >
        <Stack>
          <Text size="sm">
            {pbx.host} offers this host key. Compare it with what the PBX itself shows (
            <Code>ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub</Code>) before you trust it.
          </Text>
          <Code block data-testid="offered-fingerprint">
            {offered}
          </Code>
          <Group justify="flex-end">
            <Button variant="default" onClick={() => setOffered(null)}>
              Cancel
            </Button>
            <Button
              onClick={() =>
                run("trust", async () => {
                  const fp = offered ?? "";
                  setOffered(null);
                  const p = await call(commands.pbxTrust(name, fp));
                  setPbx(p);
                  onChanged();
                })
              }
            >
              Trust
            </Button>
          </Group>
        </Stack>
      </Modal>
    </Stack>
  );
}
