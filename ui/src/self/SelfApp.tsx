import {
  Alert,
  Badge,
  Button,
  Card,
  Container,
  Group,
  PasswordInput,
  Stack,
  Switch,
  Text,
  TextInput,
  Title,
} from "@mantine/core";
import { type FormEvent, useCallback, useEffect, useState } from "react";
import { ApiError, api, type DeviceStatus, type Me, type MeDevice, session } from "./api";

/** The invite in the page's address (`#invite=pbxi_…`): never sent to a server in a URL. */
function inviteInHash(): string | null {
  const m = /(?:^#|&)invite=([A-Za-z0-9_]+)/.exec(window.location.hash);
  return m ? m[1] : null;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function SelfApp() {
  const [invite, setInvite] = useState(inviteInHash);
  const [loggedIn, setLoggedIn] = useState(() => session.get() !== null);

  const entered = (token: string) => {
    session.set(token);
    // The invite is used: it leaves the address bar (and the history).
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
    setInvite(null);
    setLoggedIn(true);
  };
  const left = () => {
    session.clear();
    setLoggedIn(false);
  };

  return (
    <Container size="xs" py="xl">
      <Stack>
        <Title order={2}>My phone</Title>
        {invite && !loggedIn ? (
          <AcceptInvite invite={invite} onDone={entered} />
        ) : loggedIn ? (
          <Dashboard onLogout={left} />
        ) : (
          <Login onDone={entered} />
        )}
      </Stack>
    </Container>
  );
}

function AcceptInvite({ invite, onDone }: { invite: string; onDone: (t: string) => void }) {
  const [password, setPassword] = useState("");
  const [repeat, setRepeat] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (password !== repeat) {
      setError("The two passwords differ.");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      onDone((await api.accept(invite, password)).token);
    } catch (err) {
      setError(message(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Card withBorder component="form" onSubmit={submit} data-testid="accept">
      <Stack>
        <Text>Welcome. Choose a password for your phone settings (at least 12 characters).</Text>
        <PasswordInput
          label="New password"
          value={password}
          onChange={(e) => setPassword(e.currentTarget.value)}
          autoComplete="new-password"
          name="new-password"
          required
        />
        <PasswordInput
          label="Repeat it"
          value={repeat}
          onChange={(e) => setRepeat(e.currentTarget.value)}
          autoComplete="new-password"
          name="repeat-password"
          required
        />
        {error && (
          <Alert color="red" role="alert">
            {error}
          </Alert>
        )}
        <Button type="submit" loading={busy}>
          Set password
        </Button>
      </Stack>
    </Card>
  );
}

function Login({ onDone }: { onDone: (t: string) => void }) {
  const [tenant, setTenant] = useState(
    () => new URLSearchParams(window.location.search).get("tenant") ?? "",
  );
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onDone((await api.login(tenant.trim(), email.trim(), password)).token);
    } catch (err) {
      setError(message(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Card withBorder component="form" onSubmit={submit} data-testid="login">
      <Stack>
        <TextInput
          label="Company"
          description="as in your invite's link"
          value={tenant}
          onChange={(e) => setTenant(e.currentTarget.value)}
          name="tenant"
          required
        />
        <TextInput
          label="E-mail"
          type="email"
          value={email}
          onChange={(e) => setEmail(e.currentTarget.value)}
          autoComplete="username"
          name="email"
          required
        />
        <PasswordInput
          label="Password"
          value={password}
          onChange={(e) => setPassword(e.currentTarget.value)}
          autoComplete="current-password"
          name="password"
          required
        />
        {error && (
          <Alert color="red" role="alert">
            {error}
          </Alert>
        )}
        <Button type="submit" loading={busy}>
          Log in
        </Button>
      </Stack>
    </Card>
  );
}

const FORWARDS = [
  ["forward_always", "Forward every call to"],
  ["forward_busy", "When I am busy, forward to"],
  ["forward_no_answer", "When I do not answer, forward to"],
] as const;
type ForwardField = (typeof FORWARDS)[number][0];

const STATUS: Record<DeviceStatus, [string, string]> = {
  registered: ["green", "registered"],
  unreachable: ["orange", "not answering"],
  offline: ["gray", "not registered"],
  unknown: ["gray", "status unknown"],
};

/** What a saved change did: on the phone now, or waiting for the PBX. */
function savedNote(me: Me): string {
  return me.features_pending
    ? "Saved. It reaches your phone as soon as the phone system can be reached."
    : "Saved. It is on your phone now.";
}

function Dashboard({ onLogout }: { onLogout: () => void }) {
  const [me, setMe] = useState<Me | null>(null);
  const [forwards, setForwards] = useState<Record<ForwardField, string>>({
    forward_always: "",
    forward_busy: "",
    forward_no_answer: "",
  });
  const [fieldErrors, setFieldErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [pin, setPin] = useState("");
  const [devices, setDevices] = useState<MeDevice[] | null>(null);

  const show = useCallback((m: Me) => {
    setMe(m);
    setForwards({
      forward_always: m.forward_always ?? "",
      forward_busy: m.forward_busy ?? "",
      forward_no_answer: m.forward_no_answer ?? "",
    });
  }, []);
  const failed = useCallback(
    (e: unknown) => {
      if (e instanceof ApiError && e.status === 401) {
        onLogout();
        return;
      }
      if (e instanceof ApiError && e.field) {
        setFieldErrors({ [e.field]: e.message });
      } else {
        setError(message(e));
      }
    },
    [onLogout],
  );
  const begin = () => {
    setError(null);
    setNote(null);
    setFieldErrors({});
  };
  const loadDevices = useCallback(() => {
    setDevices(null);
    api.devices().then(setDevices, failed);
  }, [failed]);

  useEffect(() => {
    api.me().then(show, failed);
    loadDevices();
  }, [show, failed, loadDevices]);

  if (!me) return error ? <Alert color="red">{error}</Alert> : <Text>Loading…</Text>;

  const setDnd = async (dnd: boolean) => {
    begin();
    try {
      const m = await api.update({ dnd, expected_version: me.version });
      show(m);
      setNote(savedNote(m));
    } catch (e) {
      failed(e);
    }
  };
  const saveForwards = async (e: FormEvent) => {
    e.preventDefault();
    begin();
    try {
      const m = await api.update({ ...forwards, expected_version: me.version });
      show(m);
      setNote(savedNote(m));
    } catch (err) {
      failed(err);
    }
  };
  const savePin = async (e: FormEvent) => {
    e.preventDefault();
    begin();
    try {
      const m = await api.setPin(pin);
      show(m);
      setPin("");
      setNote(
        m.voicemail_pin_pending
          ? "PIN saved. It reaches your mailbox as soon as the phone system can be reached."
          : "PIN saved. It works in your mailbox now.",
      );
    } catch (err) {
      failed(err);
    }
  };
  const logout = async () => {
    await api.logout().catch(() => undefined);
    onLogout();
  };

  return (
    <Stack data-testid="dashboard">
      <Group justify="space-between">
        <div>
          <Text fw={600} data-testid="me-name">
            {me.display_name}
          </Text>
          <Text size="sm" c="dimmed">
            Extension {me.extension}
          </Text>
        </div>
        <Button variant="default" onClick={logout}>
          Log out
        </Button>
      </Group>
      {note && (
        <Alert color="green" data-testid="note" withCloseButton onClose={() => setNote(null)}>
          {note}
        </Alert>
      )}
      {error && (
        <Alert color="red" role="alert">
          {error}
        </Alert>
      )}
      <Card withBorder>
        <Switch
          label="Do not disturb"
          description="Calls go to voicemail, or to your busy forward"
          checked={me.dnd}
          onChange={(e) => setDnd(e.currentTarget.checked)}
          data-testid="dnd"
        />
      </Card>
      <Card withBorder component="form" onSubmit={saveForwards}>
        <Stack>
          <Text fw={600}>Forwarding</Text>
          <Text size="sm" c="dimmed">
            An extension or a phone number; leave empty for none.
          </Text>
          {FORWARDS.map(([field, label]) => (
            <TextInput
              key={field}
              label={label}
              name={field}
              value={forwards[field]}
              error={fieldErrors[field]}
              onChange={(e) => {
                const v = e.currentTarget.value;
                setForwards((f) => ({ ...f, [field]: v }));
              }}
            />
          ))}
          <Button type="submit" name="save-forwards">
            Save forwarding
          </Button>
        </Stack>
      </Card>
      {me.voicemail_enabled && (
        <Card withBorder component="form" onSubmit={savePin}>
          <Stack>
            <Text fw={600}>Voicemail PIN</Text>
            <PasswordInput
              label={me.voicemail_pin_set ? "New PIN" : "PIN"}
              description="4 to 10 digits"
              name="pin"
              value={pin}
              error={fieldErrors.pin}
              inputMode="numeric"
              autoComplete="off"
              onChange={(e) => setPin(e.currentTarget.value)}
            />
            <Button type="submit" name="save-pin">
              Set PIN
            </Button>
          </Stack>
        </Card>
      )}
      <Card withBorder>
        <Stack>
          <Group justify="space-between">
            <Text fw={600}>My phones</Text>
            <Button size="xs" variant="default" onClick={loadDevices}>
              Refresh
            </Button>
          </Group>
          {devices === null ? (
            <Text size="sm">Asking the phone system…</Text>
          ) : devices.length === 0 ? (
            <Text size="sm">No phone is set up for you.</Text>
          ) : (
            devices.map((d) => (
              <Group key={d.sip_username} justify="space-between" data-testid="device">
                <div>
                  <Text>{d.label}</Text>
                  {d.contacts.map((c) => (
                    <Text key={c} size="xs" c="dimmed">
                      {c}
                    </Text>
                  ))}
                </div>
                <Badge color={STATUS[d.status][0]} data-status={d.status}>
                  {STATUS[d.status][1]}
                </Badge>
              </Group>
            ))
          )}
        </Stack>
      </Card>
    </Stack>
  );
}
