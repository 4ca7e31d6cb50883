import { Alert, Button, Group, Paper, TextInput } from "@mantine/core";
import { useEffect, useState } from "react";
import { call, type FieldErrors, fieldErrors } from "./api";
import { commands, type User } from "./bindings";

/** How long "X got extension N" stays. */
const CONFIRMATION_MS = 10_000;

interface Props {
  tenant: string;
  onCreated: (u: User) => void;
}

/** Name and e-mail are enough: the extension, voicemail and a SIP device follow. */
export function NewUserForm({ tenant, onCreated }: Props) {
  const [name, setName] = useState("");
  const [email, setEmail] = useState("");
  const [extension, setExtension] = useState("");
  const [errors, setErrors] = useState<FieldErrors>({});
  const [busy, setBusy] = useState(false);
  const [created, setCreated] = useState<User | null>(null);
  // The confirmation goes after a while, so it is never read next to a later error or change.
  useEffect(() => {
    if (!created) return;
    const t = setTimeout(() => setCreated(null), CONFIRMATION_MS);
    return () => clearTimeout(t);
  }, [created]);

  async function submit(event: React.FormEvent) {
    event.preventDefault();
    setBusy(true);
    setErrors({});
    setCreated(null);
    try {
      const user = await call(
        commands.userCreate({
          tenant,
          name,
          email,
          extension: extension.trim() === "" ? null : extension,
          role: null,
          outbound_caller_id: null,
          voicemail: null,
        }),
      );
      setCreated(user);
      setName("");
      setEmail("");
      setExtension("");
      onCreated(user);
    } catch (e) {
      setErrors(fieldErrors(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Paper withBorder p="sm">
      <form onSubmit={submit} aria-label="New user">
        <Group align="flex-start" wrap="nowrap">
          <TextInput
            label="Name"
            placeholder="Ann Example"
            value={name}
            onChange={(e) => setName(e.currentTarget.value)}
            error={errors.name}
            style={{ flex: 2 }}
            data-testid="new-user-name"
          />
          <TextInput
            label="E-mail"
            placeholder="ann@example.com"
            value={email}
            onChange={(e) => setEmail(e.currentTarget.value)}
            error={errors.email}
            style={{ flex: 2 }}
            data-testid="new-user-email"
          />
          <TextInput
            label="Extension"
            placeholder="next free"
            value={extension}
            onChange={(e) => setExtension(e.currentTarget.value)}
            error={errors.extension}
            style={{ flex: 1 }}
            data-testid="new-user-extension"
          />
          <Button type="submit" loading={busy} mt={25} data-testid="new-user-submit">
            Add user
          </Button>
        </Group>
        {errors._form && (
          <Alert color="red" mt="sm">
            {errors._form}
          </Alert>
        )}
        {created && (
          <Alert color="green" mt="sm" data-testid="created-user">
            {created.display_name} got extension{" "}
            <strong data-testid="created-extension">{created.extension}</strong>
            {created.devices[0] && (
              <>
                {" "}
                and device{" "}
                <code data-testid="created-device">{created.devices[0].sip_username}</code>
              </>
            )}
            .
          </Alert>
        )}
      </form>
    </Paper>
  );
}
