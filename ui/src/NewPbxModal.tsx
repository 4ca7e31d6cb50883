import { Alert, Button, Group, Modal, NumberInput, Stack, TextInput } from "@mantine/core";
import { useState } from "react";
import { call, type FieldErrors, fieldErrors } from "./api";
import { commands, type Pbx } from "./bindings";

interface Props {
  opened: boolean;
  onClose: () => void;
  onCreated: (p: Pbx) => void;
}

/** Name and SSH address; the rest of the profile is edited on the PBX's page. */
export function NewPbxModal({ opened, onClose, onCreated }: Props) {
  const [name, setName] = useState("");
  const [host, setHost] = useState("");
  const [port, setPort] = useState(22);
  const [user, setUser] = useState("root");
  const [errors, setErrors] = useState<FieldErrors>({});
  const [busy, setBusy] = useState(false);

  async function submit(event: React.FormEvent) {
    event.preventDefault();
    setBusy(true);
    setErrors({});
    try {
      const p = await call(
        commands.pbxAdd({ name, profile: { host, ssh_port: port, ssh_user: user } }),
      );
      setName("");
      setHost("");
      onCreated(p);
    } catch (e) {
      setErrors(fieldErrors(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Modal opened={opened} onClose={onClose} title="Add a PBX">
      <form onSubmit={submit}>
        <Stack>
          <TextInput
            label="Name"
            value={name}
            onChange={(e) => setName(e.currentTarget.value)}
            error={errors.name}
          />
          <TextInput
            label="Host"
            value={host}
            onChange={(e) => setHost(e.currentTarget.value)}
            error={errors.host}
          />
          <NumberInput
            label="SSH port"
            value={port}
            onChange={(v) => setPort(Number(v))}
            error={errors.ssh_port}
          />
          <TextInput
            label="SSH user"
            value={user}
            onChange={(e) => setUser(e.currentTarget.value)}
            error={errors.ssh_user}
          />
          {errors._form && <Alert color="red">{errors._form}</Alert>}
          <Group justify="flex-end">
            <Button type="submit" loading={busy}>
              Add PBX
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
