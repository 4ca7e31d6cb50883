import {
  Alert,
  Button,
  Group,
  Modal,
  NumberInput,
  PasswordInput,
  Stack,
  Switch,
  Table,
  TextInput,
} from "@mantine/core";
import { useEffect, useState } from "react";
import { call, type FieldErrors, fieldErrors } from "./api";
import { commands, type Live, type User } from "./bindings";
import { DevicePassword } from "./DevicePassword";
import { DeviceLiveDetail } from "./LiveStatus";

interface Props {
  user: User | null;
  /** The tenant's live state, for each device's registration. */
  live?: Live | null;
  onClose: () => void;
  onSaved: (u: User) => void;
}

export function EditUserModal({ user, live = null, onClose, onSaved }: Props) {
  const [name, setName] = useState("");
  const [email, setEmail] = useState("");
  const [callerId, setCallerId] = useState("");
  const [forwardAlways, setForwardAlways] = useState("");
  const [forwardBusy, setForwardBusy] = useState("");
  const [forwardNoAnswer, setForwardNoAnswer] = useState("");
  const [dnd, setDnd] = useState(false);
  const [voicemail, setVoicemail] = useState(true);
  const [ringSeconds, setRingSeconds] = useState(25);
  const [policy, setPolicy] = useState("");
  // Empty leaves the PIN as it is: the stored one is never sent to the window.
  const [pin, setPin] = useState("");
  const [errors, setErrors] = useState<FieldErrors>({});
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (!user) return;
    setName(user.display_name);
    setEmail(user.email);
    setCallerId(user.outbound_caller_id ?? "");
    setForwardAlways(user.forward_always ?? "");
    setForwardBusy(user.forward_busy ?? "");
    setForwardNoAnswer(user.forward_no_answer ?? "");
    setDnd(user.dnd);
    setVoicemail(user.voicemail_enabled);
    setRingSeconds(user.ring_seconds);
    setPolicy(user.policy ?? "");
    setPin("");
    setErrors({});
  }, [user]);

  if (!user) return null;

  async function submit(event: React.FormEvent) {
    event.preventDefault();
    if (!user) return;
    setBusy(true);
    setErrors({});
    try {
      const saved = await call(
        commands.userUpdate(user.id, {
          name,
          email,
          role: null,
          outbound_caller_id: callerId,
          voicemail_enabled: voicemail,
          voicemail_pin: pin === "" ? null : pin,
          dnd,
          forward_always: forwardAlways,
          forward_busy: forwardBusy,
          forward_no_answer: forwardNoAnswer,
          ring_seconds: ringSeconds,
          policy,
          // Refused if someone else changed the user since this dialog opened.
          expected_version: user.version,
        }),
      );
      onSaved(saved);
    } catch (e) {
      setErrors(fieldErrors(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Modal
      opened
      onClose={onClose}
      title={`Edit ${user.display_name} (${user.extension})`}
      size="lg"
    >
      <form onSubmit={submit}>
        <Stack>
          <TextInput
            label="Name"
            value={name}
            onChange={(e) => setName(e.currentTarget.value)}
            error={errors.name}
          />
          <TextInput
            label="E-mail"
            value={email}
            onChange={(e) => setEmail(e.currentTarget.value)}
            error={errors.email}
          />
          <TextInput
            label="Outbound caller ID"
            description="E.164, e.g. +41445551234; empty for the tenant default"
            value={callerId}
            onChange={(e) => setCallerId(e.currentTarget.value)}
            error={errors.outbound_caller_id}
          />
          <Group grow align="flex-start">
            <TextInput
              label="Forward always"
              description="An extension or +E.164; empty for none"
              value={forwardAlways}
              onChange={(e) => setForwardAlways(e.currentTarget.value)}
              error={errors.forward_always}
            />
            <TextInput
              label="Forward when busy"
              value={forwardBusy}
              onChange={(e) => setForwardBusy(e.currentTarget.value)}
              error={errors.forward_busy}
            />
            <TextInput
              label="Forward on no answer"
              value={forwardNoAnswer}
              onChange={(e) => setForwardNoAnswer(e.currentTarget.value)}
              error={errors.forward_no_answer}
            />
          </Group>
          {user.features_pending && (
            <Alert color="yellow" data-testid="features-pending">
              DND and forwards are not on the PBX yet: it could not be reached. They are written at
              its next connection or apply.
            </Alert>
          )}
          <Group grow>
            <NumberInput
              label="Ring time (seconds)"
              min={5}
              max={300}
              clampBehavior="none"
              value={ringSeconds}
              onChange={(v) => setRingSeconds(Number(v) || 0)}
              error={errors.ring_seconds}
            />
            <TextInput
              label="Outbound policy"
              description="Empty: the tenant's default"
              value={policy}
              onChange={(e) => setPolicy(e.currentTarget.value)}
              error={errors.policy}
            />
          </Group>
          <Group align="flex-end">
            <Switch
              label="Voicemail"
              checked={voicemail}
              onChange={(e) => setVoicemail(e.currentTarget.checked)}
            />
            <Switch
              label="Do not disturb"
              checked={dnd}
              onChange={(e) => setDnd(e.currentTarget.checked)}
            />
            <PasswordInput
              label="New voicemail PIN"
              description={
                user.voicemail_pin_set ? "Empty keeps the current PIN" : "No PIN set yet"
              }
              inputMode="numeric"
              autoComplete="new-password"
              value={pin}
              onChange={(e) => setPin(e.currentTarget.value)}
              error={errors.voicemail_pin}
              data-testid="voicemail-pin"
            />
          </Group>
          {user.voicemail_pin_pending && (
            <Alert color="yellow" data-testid="pin-pending">
              The new voicemail PIN is not on the PBX yet (it could not be reached, or the mailbox
              comes with the next apply). It goes at the PBX's next connection or apply.
            </Alert>
          )}
          <Table withTableBorder>
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Device</Table.Th>
                <Table.Th>SIP username</Table.Th>
                <Table.Th>Transport</Table.Th>
                <Table.Th>Codecs</Table.Th>
                <Table.Th>Now</Table.Th>
                <Table.Th>SIP password</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {user.devices.map((d) => (
                <Table.Tr key={d.id}>
                  <Table.Td>{d.label}</Table.Td>
                  <Table.Td>
                    <code>{d.sip_username}</code>
                  </Table.Td>
                  <Table.Td>{d.transport}</Table.Td>
                  <Table.Td>{d.codecs.join(", ")}</Table.Td>
                  <Table.Td>
                    <DeviceLiveDetail endpoint={d.sip_username} live={live} />
                  </Table.Td>
                  <Table.Td>
                    <DevicePassword deviceId={d.id} />
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
          {errors._form && <Alert color="red">{errors._form}</Alert>}
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit" loading={busy}>
              Save
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
