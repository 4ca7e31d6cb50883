// A device's SIP password, for provisioning a phone by hand: shown on request (audited), and
// renewed when a phone's leaked or forgotten (the PBX gets it at the next apply). Shown for a
// minute, then hidden again; never kept anywhere in the window.
import { Button, Code, CopyButton, Group, Text } from "@mantine/core";
import { useEffect, useState } from "react";
import { call } from "./api";
import { commands } from "./bindings";

const SHOWN_MS = 60_000;

export function DevicePassword({ deviceId }: { deviceId: number }) {
  const [password, setPassword] = useState<string | null>(null);
  const [renewed, setRenewed] = useState(false);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (password === null) return;
    const t = setTimeout(() => setPassword(null), SHOWN_MS);
    return () => clearTimeout(t);
  }, [password]);

  async function get(renew: boolean) {
    setError(null);
    try {
      const r = await call(
        renew ? commands.deviceNewPassword(deviceId) : commands.deviceReveal(deviceId),
      );
      setPassword(r.sip_password);
      setRenewed(renew);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  }

  if (password !== null) {
    return (
      <Group gap={4} wrap="nowrap">
        <Code data-testid={`device-password-${deviceId}`}>{password}</Code>
        <CopyButton value={password}>
          {({ copied, copy }) => (
            <Button size="compact-xs" variant="subtle" onClick={copy}>
              {copied ? "Copied" : "Copy"}
            </Button>
          )}
        </CopyButton>
        <Button size="compact-xs" variant="subtle" onClick={() => setPassword(null)}>
          Hide
        </Button>
        {renewed && (
          <Text size="xs" c="orange">
            new: the phone needs it after the next apply
          </Text>
        )}
      </Group>
    );
  }
  return (
    <Group gap={4} wrap="nowrap">
      <Button
        size="compact-xs"
        variant="subtle"
        onClick={() => get(false)}
        data-testid={`device-reveal-${deviceId}`}
      >
        Show password
      </Button>
      <Button
        size="compact-xs"
        variant="subtle"
        color="orange"
        onClick={() => get(true)}
        data-testid={`device-renew-${deviceId}`}
      >
        New password
      </Button>
      {error && (
        <Text size="xs" c="red">
          {error}
        </Text>
      )}
    </Group>
  );
}
