import { Button, NumberInput, Popover, Stack, Switch, Text } from "@mantine/core";
import { useEffect, useState } from "react";
import { call } from "./api";
import { commands, type LocalApi } from "./bindings";

/** The header's "Local API" switch: the API on 127.0.0.1 for automation on this laptop. */
export function LocalApiControl() {
  const [state, setState] = useState<LocalApi | null>(null);
  const [port, setPort] = useState<number | string>(8640);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    call(commands.localApiGet())
      .then((s) => {
        setState(s);
        setPort(s.port);
      })
      .catch((e) => setError(e instanceof Error ? e.message : String(e)));
  }, []);

  const apply = async (enabled: boolean) => {
    setError(null);
    try {
      const s = await call(commands.localApiSet({ enabled, port: Number(port) }));
      setState(s);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  };

  const running = state?.url != null;
  return (
    <Popover width={320} position="bottom-end" withArrow>
      <Popover.Target>
        <Button
          size="compact-xs"
          variant="subtle"
          color={running ? "green" : "gray"}
          data-testid="local-api-open"
        >
          {running ? "API on" : "API off"}
        </Button>
      </Popover.Target>
      <Popover.Dropdown>
        <Stack gap="xs">
          <Switch
            label="Serve the API on this computer"
            description="127.0.0.1 only, for scripts on this laptop; each request logs in or carries a token"
            checked={state?.enabled ?? false}
            onChange={(e) => apply(e.currentTarget.checked)}
            data-testid="local-api-switch"
          />
          <NumberInput
            label="Port"
            min={1024}
            max={65535}
            value={port}
            onChange={setPort}
            onBlur={() => state?.enabled && Number(port) !== state.port && apply(true)}
            error={error}
          />
          {state?.url && (
            <Text size="sm" data-testid="local-api-url">
              {state.url} (OpenAPI: /api/v1/openapi.json)
            </Text>
          )}
          {state?.error && (
            <Text size="sm" c="red">
              {state.error}
            </Text>
          )}
        </Stack>
      </Popover.Dropdown>
    </Popover>
  );
}
