// Call routing screens: a tenant's numbers (DIDs) and outbound policies, a PBX's trunks.
// Every field error comes back from the workspace with its field name and is shown there.
import {
  ActionIcon,
  Alert,
  Autocomplete,
  Badge,
  Button,
  Group,
  Modal,
  MultiSelect,
  NumberInput,
  Paper,
  Select,
  SimpleGrid,
  Stack,
  Switch,
  Table,
  Text,
  TextInput,
} from "@mantine/core";
import { notifications } from "@mantine/notifications";
import { useCallback, useEffect, useState } from "react";
import { call, type FieldErrors, fieldErrors } from "./api";
import {
  commands,
  type Did,
  type Policy,
  type PolicyRule,
  type RingGroup,
  type Transport,
  type Trunk,
  type UserSummary,
} from "./bindings";
import { describeDestination, destinationChoices } from "./destinations";
import { CallPathPanel } from "./Preview";
import { folded } from "./UserTable";

function useList<T>(load: () => Promise<T[]>) {
  const [items, setItems] = useState<T[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const reload = useCallback(async () => {
    try {
      setItems(await load());
      setError(null);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  }, [load]);
  useEffect(() => {
    reload();
  }, [reload]);
  /** Runs a change from a row's button, then reloads; a refusal is shown as a notification. */
  const act = useCallback(
    async (op: () => Promise<unknown>) => {
      try {
        await op();
        await reload();
      } catch (e) {
        toast(e);
      }
    },
    [reload],
  );
  return { items, error, reload, act };
}

function toast(e: unknown) {
  notifications.show({ color: "red", message: e instanceof Error ? e.message : String(e) });
}

export function DidPanel({ tenant, pbx }: { tenant: string; pbx?: string }) {
  const [tracing, setTracing] = useState<string | null>(null);
  const load = useCallback(() => call(commands.didList(tenant)), [tenant]);
  const { items, error, reload, act } = useList<Did>(load);
  const [number, setNumber] = useState("");
  const [label, setLabel] = useState("");
  const [destination, setDestination] = useState("");
  const [errors, setErrors] = useState<FieldErrors>({});
  const [people, setPeople] = useState<UserSummary[]>([]);
  const [groups, setGroups] = useState<RingGroup[]>([]);

  useEffect(() => {
    call(commands.userList(tenant))
      .then(setPeople)
      .catch(() => setPeople([]));
    call(commands.ringGroupList(tenant))
      .then(setGroups)
      .catch(() => setGroups([]));
  }, [tenant]);
  const described = (dest: string) => describeDestination(dest, people, groups);
  const choices = destinationChoices(people, groups);

  async function add(event?: React.FormEvent) {
    event?.preventDefault();
    try {
      const d = await call(
        commands.didAdd({
          tenant,
          number,
          country: null,
          label: label || null,
          destination,
          trunk: null,
        }),
      );
      notifications.show({ message: `${d.number} routed to ${d.destination}` });
      setNumber("");
      setLabel("");
      setErrors({});
      await reload();
    } catch (e) {
      setErrors(fieldErrors(e));
    }
  }

  return (
    <Stack>
      <Paper withBorder p="sm" component="form" onSubmit={add}>
        <Group align="flex-start">
          <TextInput
            label="Number"
            placeholder="044 555 12 34 or +41…"
            value={number}
            onChange={(e) => setNumber(e.currentTarget.value)}
            error={errors.number}
            data-testid="did-number"
          />
          <TextInput
            label="Label"
            value={label}
            onChange={(e) => setLabel(e.currentTarget.value)}
            error={errors.label}
          />
          <Autocomplete
            label="Destination"
            placeholder="a person's name or extension, external:+41…, hangup"
            value={destination}
            onChange={setDestination}
            data={choices}
            // A person is found by name or extension; the field keeps the destination itself.
            filter={({ options, search }) => {
              const q = folded(search.trim());
              return options.filter((o) => "value" in o && folded(described(o.value)).includes(q));
            }}
            renderOption={({ option }) => described(option.value)}
            limit={20}
            error={errors.destination}
            w={320}
            data-testid="did-destination"
          />
          <Button mt={24} type="submit" data-testid="did-add">
            Route number
          </Button>
        </Group>
        {errors._form && (
          <Alert color="red" mt="sm">
            {errors._form}
          </Alert>
        )}
      </Paper>
      {error && <Alert color="red">{error}</Alert>}
      <Table data-testid="did-table">
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Number</Table.Th>
            <Table.Th>Label</Table.Th>
            <Table.Th>Goes to</Table.Th>
            <Table.Th />
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {(items ?? []).map((d) => (
            <Table.Tr key={d.number}>
              <Table.Td>
                {pbx ? (
                  <Button
                    size="compact-sm"
                    variant="subtle"
                    title="Where does this number go?"
                    onClick={() => setTracing(d.number)}
                    data-testid={`did-trace-${d.number}`}
                  >
                    {d.number}
                  </Button>
                ) : (
                  d.number
                )}
              </Table.Td>
              <Table.Td>{d.label}</Table.Td>
              <Table.Td>{described(d.destination)}</Table.Td>
              <Table.Td>
                <Button
                  size="xs"
                  variant="subtle"
                  color="red"
                  onClick={() => act(() => call(commands.didRemove(d.number)))}
                >
                  Remove
                </Button>
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {pbx && (
        <Modal
          opened={tracing !== null}
          onClose={() => setTracing(null)}
          title={`Where ${tracing ?? ""} goes`}
          size="xl"
        >
          {tracing && <CallPathPanel pbx={pbx} initial={tracing} />}
        </Modal>
      )}
    </Stack>
  );
}

/** The rules with two of them swapped (first match wins: order is meaning). */
function swap(rules: PolicyRule[], a: number, b: number): PolicyRule[] {
  const out = [...rules];
  [out[a], out[b]] = [out[b], out[a]];
  return out;
}

const emptyRule = (): PolicyRule => ({
  pattern: "",
  allow: true,
  strip: 0,
  prepend: "",
  trunks: [],
});

function RuleEditor({
  rules,
  trunks,
  errors,
  onChange,
}: {
  rules: PolicyRule[];
  trunks: string[];
  errors: FieldErrors;
  onChange: (rules: PolicyRule[]) => void;
}) {
  const set = (i: number, patch: Partial<PolicyRule>) =>
    onChange(rules.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  return (
    <Stack gap={4}>
      {rules.length > 0 && (
        <Group gap="xs" wrap="nowrap">
          <Text w={20} />
          {[
            ["Pattern", 140],
            ["Action", 90],
            ["Strip digits", 80],
            ["Prepend", 90],
            ["Trunks, in order", 220],
          ].map(([label, w]) => (
            <Text key={label} w={w as number} size="xs" fw={500} c="dimmed">
              {label}
            </Text>
          ))}
        </Group>
      )}
      {rules.map((r, i) => {
        const err = (f: string) => errors[`rules[${i + 1}].${f}`];
        return (
          // Rules have no id of their own: their position is their identity.
          // biome-ignore lint/suspicious/noArrayIndexKey: position is the rule's identity
          <Group key={i} align="flex-start" gap="xs">
            <Text w={20} mt={6} size="sm" c="dimmed">
              {i + 1}.
            </Text>
            <TextInput
              placeholder="_0[1-9]X."
              value={r.pattern}
              onChange={(e) => set(i, { pattern: e.currentTarget.value })}
              error={err("pattern")}
              w={140}
            />
            <Select
              data={["allow", "deny"]}
              value={r.allow ? "allow" : "deny"}
              onChange={(v) =>
                set(i, { allow: v === "allow", trunks: v === "allow" ? r.trunks : [] })
              }
              w={90}
            />
            <NumberInput
              placeholder="0"
              aria-label="strip digits"
              value={r.strip}
              min={0}
              max={20}
              onChange={(v) => set(i, { strip: Number(v) || 0 })}
              error={err("strip")}
              w={80}
            />
            <TextInput
              placeholder="prepend"
              value={r.prepend}
              onChange={(e) => set(i, { prepend: e.currentTarget.value })}
              error={err("prepend")}
              w={90}
            />
            <MultiSelect
              placeholder={r.allow ? "trunks, in order" : "—"}
              data={trunks}
              value={r.trunks}
              disabled={!r.allow}
              onChange={(v) => set(i, { trunks: v })}
              error={err("trunks")}
              w={220}
            />
            <ActionIcon
              variant="subtle"
              mt={4}
              aria-label={`move rule ${i + 1} up`}
              disabled={i === 0}
              onClick={() => onChange(swap(rules, i, i - 1))}
            >
              ↑
            </ActionIcon>
            <ActionIcon
              variant="subtle"
              mt={4}
              aria-label={`move rule ${i + 1} down`}
              disabled={i === rules.length - 1}
              onClick={() => onChange(swap(rules, i, i + 1))}
            >
              ↓
            </ActionIcon>
            <ActionIcon
              variant="subtle"
              color="red"
              mt={4}
              aria-label="remove rule"
              onClick={() => onChange(rules.filter((_, j) => j !== i))}
            >
              ×
            </ActionIcon>
          </Group>
        );
      })}
      <Group>
        <Button size="xs" variant="default" onClick={() => onChange([...rules, emptyRule()])}>
          Add rule
        </Button>
        <Text size="xs" c="dimmed">
          First match wins. Emergency numbers are always routed, whatever the rules say.
        </Text>
      </Group>
    </Stack>
  );
}

export function PolicyPanel({ tenant, pbx }: { tenant: string; pbx: string }) {
  const load = useCallback(() => call(commands.policyList(tenant)), [tenant]);
  const { items, error, reload, act } = useList<Policy>(load);
  const [trunks, setTrunks] = useState<string[]>([]);
  const [name, setName] = useState("");
  const [rules, setRules] = useState<PolicyRule[]>([emptyRule()]);
  const [makeDefault, setMakeDefault] = useState(false);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [editing, setEditing] = useState<{
    name: string;
    version: number;
    rules: PolicyRule[];
  } | null>(null);

  useEffect(() => {
    call(commands.trunkList(pbx))
      .then((list) => setTrunks(list.map((t) => t.name)))
      .catch(toast);
  }, [pbx]);

  async function add() {
    try {
      await call(commands.policyAdd({ tenant, name, rules, make_default: makeDefault }));
      setName("");
      setRules([emptyRule()]);
      setErrors({});
      await reload();
    } catch (e) {
      setErrors(fieldErrors(e));
    }
  }

  async function save() {
    if (!editing) return;
    try {
      await call(
        commands.policyUpdate(tenant, editing.name, {
          rules: editing.rules,
          expected_version: editing.version,
        }),
      );
      setEditing(null);
      setErrors({});
      await reload();
    } catch (e) {
      setErrors(fieldErrors(e));
    }
  }

  return (
    <Stack>
      {error && <Alert color="red">{error}</Alert>}
      {(items ?? []).map((p) => (
        <Paper key={p.name} withBorder p="sm">
          <Group justify="space-between">
            <Group>
              <Text fw={600}>{p.name}</Text>
              {p.is_default && <Badge>default</Badge>}
            </Group>
            <Group>
              {editing?.name === p.name ? (
                <>
                  <Button size="xs" onClick={save}>
                    Save rules
                  </Button>
                  <Button size="xs" variant="default" onClick={() => setEditing(null)}>
                    Cancel
                  </Button>
                </>
              ) : (
                <Button
                  size="xs"
                  variant="default"
                  onClick={() => {
                    setErrors({});
                    setEditing({ name: p.name, version: p.version, rules: p.rules });
                  }}
                >
                  Edit rules
                </Button>
              )}
              <Button
                size="xs"
                variant="subtle"
                color="red"
                onClick={() => act(() => call(commands.policyRemove(tenant, p.name)))}
              >
                Remove
              </Button>
            </Group>
          </Group>
          {editing?.name === p.name ? (
            <RuleEditor
              rules={editing.rules}
              trunks={trunks}
              errors={errors}
              onChange={(r) => setEditing({ ...editing, rules: r })}
            />
          ) : (
            <Table>
              <Table.Tbody>
                {p.rules.map((r, i) => (
                  // biome-ignore lint/suspicious/noArrayIndexKey: position is the rule's identity
                  <Table.Tr key={`${i}-${r.pattern}`}>
                    <Table.Td w={30}>{i + 1}.</Table.Td>
                    <Table.Td ff="monospace">{r.pattern}</Table.Td>
                    <Table.Td>
                      <Badge color={r.allow ? "green" : "red"}>{r.allow ? "allow" : "deny"}</Badge>
                    </Table.Td>
                    <Table.Td>
                      {r.strip > 0 && `strip ${r.strip} `}
                      {r.prepend && `prepend ${r.prepend}`}
                    </Table.Td>
                    <Table.Td>{r.trunks.join(" → ")}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          )}
          {editing?.name === p.name && errors._form && (
            <Alert color="red" mt="xs">
              {errors._form}
            </Alert>
          )}
        </Paper>
      ))}
      <Paper withBorder p="sm">
        <Stack gap="xs">
          <Group align="flex-start">
            <TextInput
              label="New policy"
              placeholder="default"
              value={name}
              onChange={(e) => setName(e.currentTarget.value)}
              error={errors.policy ?? errors.name}
            />
            <Switch
              mt={30}
              label="Tenant's default"
              checked={makeDefault}
              onChange={(e) => setMakeDefault(e.currentTarget.checked)}
            />
          </Group>
          {!editing && (
            <RuleEditor rules={rules} trunks={trunks} errors={errors} onChange={setRules} />
          )}
          {!editing && errors._form && <Alert color="red">{errors._form}</Alert>}
          <Group>
            <Button onClick={add} disabled={!!editing}>
              Add policy
            </Button>
          </Group>
        </Stack>
      </Paper>
    </Stack>
  );
}

export function TrunkPanel({ pbx }: { pbx: string }) {
  const load = useCallback(() => call(commands.trunkList(pbx)), [pbx]);
  const { items, error, reload, act } = useList<Trunk>(load);
  const [tenants, setTenants] = useState<string[]>([]);
  useEffect(() => {
    call(commands.tenantList())
      .then((list) => setTenants(list.filter((t) => t.pbx === pbx).map((t) => t.slug)))
      .catch(toast);
  }, [pbx]);
  const blank = {
    name: "",
    host: "",
    port: 5060,
    transport: "udp" as Transport,
    register: true,
    username: "",
    password: "",
    tenants: [] as string[],
  };
  const [form, setForm] = useState(blank);
  /** The trunk being edited (the form then saves it), or null to add one. */
  const [editing, setEditing] = useState<Trunk | null>(null);
  const [errors, setErrors] = useState<FieldErrors>({});
  const set = <K extends keyof typeof form>(k: K, v: (typeof form)[K]) =>
    setForm({ ...form, [k]: v });

  function edit(t: Trunk) {
    setEditing(t);
    setErrors({});
    setForm({
      name: t.name,
      host: t.host,
      port: t.port,
      transport: t.transport,
      register: t.register,
      username: t.username ?? "",
      // Write-only: empty keeps the stored one.
      password: "",
      tenants: t.tenants,
    });
  }

  async function save(event?: React.FormEvent) {
    event?.preventDefault();
    try {
      if (editing) {
        await call(
          commands.trunkUpdate(pbx, editing.name, {
            host: form.host,
            port: form.port,
            transport: form.transport,
            register: form.register,
            username: form.username,
            password: form.password || null,
            from_domain: null,
            from_user: null,
            codecs: null,
            enabled: null,
            tenants: form.tenants,
            expected_version: editing.version,
          }),
        );
        notifications.show({ message: `Trunk ${editing.name} saved` });
      } else {
        await call(
          commands.trunkAdd({
            pbx,
            name: form.name,
            host: form.host,
            port: form.port,
            transport: form.transport,
            register: form.register,
            username: form.username || null,
            password: form.password || null,
            from_domain: null,
            from_user: null,
            codecs: null,
            enabled: true,
            tenants: form.tenants,
          }),
        );
      }
      setForm(blank);
      setEditing(null);
      setErrors({});
      await reload();
    } catch (e) {
      setErrors(fieldErrors(e));
    }
  }

  return (
    <Stack>
      {error && <Alert color="red">{error}</Alert>}
      <Table data-testid="trunk-table">
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Name</Table.Th>
            <Table.Th>Host</Table.Th>
            <Table.Th>Authentication</Table.Th>
            <Table.Th>Tenants</Table.Th>
            <Table.Th>Enabled</Table.Th>
            <Table.Th />
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {(items ?? []).map((t) => (
            <Table.Tr key={t.name}>
              <Table.Td>{t.name}</Table.Td>
              <Table.Td>
                {t.host}:{t.port} ({t.transport})
              </Table.Td>
              <Table.Td>{t.register ? `registers as ${t.username ?? "?"}` : "by address"}</Table.Td>
              <Table.Td>{t.tenants.join(", ")}</Table.Td>
              <Table.Td>
                <Switch
                  checked={t.enabled}
                  aria-label={`trunk ${t.name} enabled`}
                  onChange={(e) => {
                    const enabled = e.currentTarget.checked;
                    act(() =>
                      call(
                        commands.trunkUpdate(pbx, t.name, {
                          host: null,
                          port: null,
                          transport: null,
                          register: null,
                          username: null,
                          password: null,
                          from_domain: null,
                          from_user: null,
                          codecs: null,
                          enabled,
                          tenants: null,
                          expected_version: t.version,
                        }),
                      ),
                    );
                  }}
                />
              </Table.Td>
              <Table.Td>
                <Button
                  size="xs"
                  variant="subtle"
                  onClick={() => edit(t)}
                  data-testid={`trunk-edit-${t.name}`}
                >
                  Edit
                </Button>
                <Button
                  size="xs"
                  variant="subtle"
                  color="red"
                  onClick={() => act(() => call(commands.trunkRemove(pbx, t.name)))}
                >
                  Remove
                </Button>
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      <Paper withBorder p="sm" component="form" onSubmit={save} data-testid="trunk-form">
        <Text fw={600} size="sm" mb="xs">
          {editing ? `Edit trunk ${editing.name}` : "Add a trunk"}
        </Text>
        <SimpleGrid cols={4}>
          <TextInput
            label="Name"
            value={form.name}
            onChange={(e) => set("name", e.currentTarget.value)}
            error={errors.name}
            disabled={editing !== null}
          />
          <TextInput
            label="Host"
            value={form.host}
            onChange={(e) => set("host", e.currentTarget.value)}
            error={errors.host}
          />
          <NumberInput
            label="Port"
            value={form.port}
            onChange={(v) => set("port", Number(v) || 5060)}
            error={errors.port}
          />
          <Select
            label="Transport"
            data={["udp", "tcp", "tls"]}
            value={form.transport}
            onChange={(v) => set("transport", (v ?? "udp") as Transport)}
            allowDeselect={false}
            error={errors.transport}
            data-testid="trunk-transport"
          />
          <Switch
            mt={30}
            label="Registers (else by address)"
            checked={form.register}
            onChange={(e) => set("register", e.currentTarget.checked)}
          />
          <TextInput
            label="Username"
            value={form.username}
            onChange={(e) => set("username", e.currentTarget.value)}
            error={errors.username ?? errors.register}
          />
          <TextInput
            label="Password"
            type="password"
            placeholder={editing?.password_set ? "unchanged" : ""}
            value={form.password}
            onChange={(e) => set("password", e.currentTarget.value)}
            error={errors.password}
          />
          <MultiSelect
            label="Tenants that may use it"
            data={tenants}
            value={form.tenants}
            onChange={(v) => set("tenants", v)}
            error={errors.tenants}
          />
          <Group mt={24} gap="xs">
            <Button type="submit" data-testid="trunk-save">
              {editing ? "Save trunk" : "Add trunk"}
            </Button>
            {editing && (
              <Button
                variant="default"
                onClick={() => {
                  setEditing(null);
                  setForm(blank);
                  setErrors({});
                }}
              >
                Cancel
              </Button>
            )}
          </Group>
        </SimpleGrid>
        {errors._form && (
          <Alert color="red" mt="sm">
            {errors._form}
          </Alert>
        )}
      </Paper>
    </Stack>
  );
}
