import {
  Alert,
  Button,
  Center,
  Paper,
  PasswordInput,
  Stack,
  Text,
  TextInput,
  Title,
} from "@mantine/core";
import { useState } from "react";
import { call } from "./api";
import { type AppInfo, commands } from "./bindings";

interface Props {
  workspace: string;
  onLoggedIn: (info: AppInfo) => void;
}

/** A team workspace on PostgreSQL: operators log in with their own password. */
export function LoginScreen({ workspace, onLoggedIn }: Props) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(event: React.FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      onLoggedIn(await call(commands.login(username, password)));
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
      setPassword("");
    } finally {
      setBusy(false);
    }
  }

  return (
    <Center h="100vh">
      <Paper withBorder p="xl" w={380}>
        <form onSubmit={submit}>
          <Stack>
            <Title order={3}>pbxdesk</Title>
            <Text size="sm" c="dimmed">
              Log in to {workspace}
            </Text>
            <TextInput
              label="Operator"
              value={username}
              onChange={(e) => setUsername(e.currentTarget.value)}
              autoComplete="username"
              required
            />
            <PasswordInput
              label="Password"
              value={password}
              onChange={(e) => setPassword(e.currentTarget.value)}
              autoComplete="current-password"
              required
            />
            {error && <Alert color="red">{error}</Alert>}
            <Button type="submit" loading={busy}>
              Log in
            </Button>
          </Stack>
        </form>
      </Paper>
    </Center>
  );
}
